"""Refitting a head's per-element reference values on the trained model's training residuals
(``refit_atomref``, molpre.train.refit): the kind's fit, and a finetune that leaves no
per-element residual on its training molecules, saved as such."""

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from molpre.data.datasets import load_labeled
from molpre.data.graph import atoms_to_sample
from molpre.inference.batch import predict_targets
from molpre.models.checkpoint import load_checkpoint
from molpre.targets import get_kind
from molpre.targets.atomref import fit_atomref
from molpre.targets.kinds import HeadDims
from molpre.train.finetune import finetune
from molpre.train.finetune_config import FinetuneConfig


def test_extensive_refit_adds_the_per_element_fit_of_the_residuals():
    kind = get_kind("extensive")
    head = kind.make_head(HeadDims(8, 2, 10), 4, atomref={1: -0.5, 6: -1.0})
    numbers = [[6, 1, 1, 1, 1], [6, 6, 1, 1], [1, 1], [6, 6, 6, 1, 1, 1, 1, 1, 1]]
    predictions = np.array([3.0, -2.0, 0.5, 1.0])
    counts = np.array([[z.count(1), z.count(6)] for z in numbers], dtype=float)
    labels = predictions + counts @ np.array([0.01, 0.2])
    moved = kind.refit(head, numbers, labels, predictions)
    assert moved["atomref_shift"] == pytest.approx({1: 0.01, 6: 0.2}, abs=1e-12)
    assert head.atomref.as_dict() == pytest.approx({1: -0.49, 6: -0.8}, abs=1e-12)


def test_refit_leaves_elements_the_atomref_does_not_know():
    kind = get_kind("extensive")
    head = kind.make_head(HeadDims(8, 2, 10), 4, atomref={1: -0.5, 6: -1.0})
    numbers = [[6, 1, 1], [8, 1, 1], [6, 8], [1, 1]]
    moved = kind.refit(head, numbers, np.array([1.0, 2.0, 0.5, 0.2]), np.zeros(4))
    assert set(moved["atomref_shift"]) == {1, 6}
    assert not bool(head.atomref.known[8]) and float(head.atomref.energies[8]) == 0.0


def test_kinds_without_a_reference_refit_nothing():
    kind = get_kind("intensive")
    head = kind.make_head(HeadDims(8, 2, 10), 4, offset=1.0, scale=1.0)
    assert kind.refit(head, [[1, 1]], np.array([2.0]), np.array([1.0])) == {}
    assert head.offset == 1.0


@pytest.fixture(scope="module")
def qm9_small(shared_data):
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol")
    return data.subset(range(120))


def _train_rows(result, data):
    split = pd.read_csv(result.out / "split.csv")
    train_ids = set(split.mol_id[split.part == "train"])
    return [i for i, mol in enumerate(data.mol_ids) if mol in train_ids]


def _per_element_residual(model, data, rows, cutoff):
    samples = [atoms_to_sample(data.atoms[i], cutoff) for i in rows]
    pred = predict_targets(model, samples)["energy"]
    return fit_atomref([data.atoms[i].numbers for i in rows], data.labels["energy"][rows] - pred)


def test_finetune_refit_leaves_no_per_element_training_residual(qm9_small, tmp_path, monkeypatch):
    """Every member of a committee ends with a zero per-element fit of its training residuals
    (eV per atom); the same run without the refit does not; the checkpoint keeps the shift."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = dict(data="qm9-subset", target="u0_atom", unit="kcal/mol", budget=60,
                    test_fraction=0.2, epochs=3, batch_size=8, lr=1e-2, patience=10, seed=0,
                    progress=False, threads=1, log_model=False, ensemble=2, dtype="float64")
    result = finetune(FinetuneConfig(**settings, out=str(tmp_path / "on"), refit_atomref=True),
                      data=qm9_small)
    plain = finetune(FinetuneConfig(**settings, out=str(tmp_path / "off")), data=qm9_small)
    rows = _train_rows(result, qm9_small)
    cutoff = float(result.model.encoder.config.cutoff)
    for member in result.model.members:
        left = _per_element_residual(member, qm9_small, rows, cutoff)
        assert max(abs(v) for v in left.values()) < 1e-8
    before = _per_element_residual(plain.model.members[0], qm9_small, rows, cutoff)
    assert max(abs(v) for v in before.values()) > 1e-4
    logged = mlflow.get_run(result.run_id).data.metrics
    assert any(k.startswith("refit.energy.Z") for k in logged)
    assert any(k.startswith("member_1.refit.energy.Z") for k in logged)
    reloaded, _ = load_checkpoint(result.checkpoint)
    samples = [atoms_to_sample(qm9_small.atoms[i], cutoff) for i in rows[:10]]
    with torch.no_grad():
        np.testing.assert_allclose(predict_targets(reloaded, samples)["energy"],
                                   predict_targets(result.model, samples)["energy"], atol=1e-9)
