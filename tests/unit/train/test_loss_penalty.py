"""``loss: mse | l1``: the penalty every finetuning loss term averages (targets and forces),
one setting from the command line, a finetune config or a study's ``train:`` section."""

import pytest
import torch

from molpre.config import ConfigError, from_dict
from molpre.study.config import StudyConfig
from molpre.study.plan import Child, finetune_config
from molpre.targets import get_target
from molpre.targets.kinds import PENALTIES
from molpre.train.finetune_config import LOSSES, FinetuneConfig
from molpre.train.losses import weighted_loss


def test_mse_squares_and_l1_takes_the_absolute_residual_in_units_of_the_scale():
    spec = get_target("energy")
    pred, label = torch.tensor([1.0, 2.0, 4.0]), torch.zeros(3)
    assert spec.kind.loss(pred, label, 2.0) == pytest.approx((0.25 + 1 + 4) / 3)
    assert spec.kind.loss(pred, label, 2.0, "mse") == pytest.approx((0.25 + 1 + 4) / 3)
    assert spec.kind.loss(pred, label, 2.0, "l1") == pytest.approx(3.5 / 3)
    with pytest.raises(KeyError):
        spec.kind.loss(pred, label, 2.0, "huber")


def test_an_l1_gradient_does_not_grow_with_the_residual():
    spec = get_target("energy")
    pred = torch.tensor([0.1, 10.0], requires_grad=True)
    spec.kind.loss(pred, torch.zeros(2), 1.0, "l1").backward()
    assert pred.grad.tolist() == pytest.approx([0.5, 0.5])  # sign / B, whatever the size


def test_the_penalty_reaches_the_forces_term_too():
    energy, forces = get_target("energy"), get_target("forces")
    out = {energy.output_key: torch.tensor([3.0]), forces.output_key: torch.tensor([[0.0, 0.0, -2.0]])}
    batch = {energy.label_key: torch.tensor([1.0]), forces.label_key: torch.zeros(1, 3)}
    mse = weighted_loss(out, batch, forces_weight=1.0)
    l1 = weighted_loss(out, batch, forces_weight=1.0, penalty="l1")
    assert (float(mse["energy"]), float(mse["forces"])) == pytest.approx((4.0, 4 / 3))
    assert (float(l1["energy"]), float(l1["forces"])) == pytest.approx((2.0, 2 / 3))
    assert float(l1["loss"]) == pytest.approx(2.0 + 2 / 3)


def test_the_config_offers_exactly_the_registered_penalties():
    assert set(LOSSES) == set(PENALTIES)


def test_an_unknown_loss_is_refused_where_it_is_written(tmp_path):
    with pytest.raises(ConfigError, match="loss 'huber': use mse or l1"):
        FinetuneConfig(loss="huber")
    with pytest.raises(ConfigError, match="train: loss 'huber'"):
        from_dict(StudyConfig, {"data": "x", "train": {"loss": "huber"}})


def test_a_study_gives_every_child_its_loss(tmp_path):
    config = from_dict(StudyConfig, {"data": "labels.db", "train": {"loss": "l1"}})
    assert from_dict(StudyConfig, {"data": "labels.db"}).train.loss == "mse"
    child = Child(arm="scratch", encoder=None, mode="scratch", budget=40, seed=2)
    assert finetune_config(config, child, tmp_path / "ids.txt", None, tmp_path, "e").loss == "l1"


def test_a_finetune_on_the_l1_loss_learns_and_records_it(shared_data, tmp_path, monkeypatch):
    import mlflow

    from molpre.data.datasets import load_labeled
    from molpre.train.finetune import finetune

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol").subset(range(120))
    result = finetune(FinetuneConfig(
        data="qm9-subset", target="u0_atom", unit="kcal/mol", budget=60, test_fraction=0.25,
        epochs=8, batch_size=8, lr=1e-2, loss="l1", seed=0, out=str(tmp_path / "ft"),
        progress=False, threads=1, log_model=False), data=data)
    assert result.metrics["best_val_mae_mev"] < result.metrics["step0_val_mae_mev"]
    assert mlflow.MlflowClient(uri).get_run(result.run_id).data.params["loss"] == "l1"
