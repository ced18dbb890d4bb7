"""pretrain(): masked atoms learn, contrast separates pairs, resume continues, CLI runs."""

from __future__ import annotations

import mlflow
import pytest
import torch
from click.testing import CliRunner

from molpre.chem import records_from_smiles
from molpre.cli import main
from molpre.data import keys
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import build_shards, read_manifest
from molpre.models.encoder import load_encoder
from molpre.train.pretrain import pretrain
from molpre.train.pretrain_module import PretrainModule

SMILES = ["CCCCO", "CCOCC", "NCCCN", "OCCCO", "CCCC(=O)O", "CCNCC", "CC(C)CO", "CCCCN",
          "COCCO", "CCOC(C)=O", "NCC(=O)O", "CCCCC", "OCC(O)CO", "CC(N)CO", "CCSCC", "ClCCCO"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build_shards(records_from_smiles(SMILES), out, conformers=4, seed=1, shard_size=8,
                 progress=False)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real MLflow SQLite store for the module (creating a store costs ~10 s)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


def config(shards, outdir, objectives=("mask", "contrast", "denoise"), **train):
    weights = {name: {"weight": 1.0 if name in objectives else 0.0}
               for name in ("mask", "contrast", "denoise")}
    return {"output": str(outdir), "seed": 0, "corpus": {"shards": str(shards)},
            "objectives": weights,
            "train": {"batch_size": 8, "lr": 3e-3, "progress": False, "log_every_n_steps": 5,
                      **train},
            "monitor": {"every_n_steps": 25, "molecules": 16}}


def module_from(path) -> PretrainModule:
    state = torch.load(path, weights_only=True)
    module = PretrainModule(**state["hyper_parameters"])
    module.load_state_dict(state["state_dict"])
    return module.eval()


@pytest.mark.parametrize("steps", [100, pytest.param(300, marks=pytest.mark.slow)])
def test_masked_atoms_beat_the_element_frequency_baseline(shards, tmp_path, store, steps):
    result = pretrain(config(shards, tmp_path, ("mask",), max_steps=steps, epochs=1000,
                             batch_size=4))
    assert result.global_step == steps
    module = module_from(result.last_checkpoint)
    batch = collate_views(list(ShardDataset(shards, 4.5, seed=3)))
    z = batch[keys.ATOMIC_NUMBERS]
    baseline = torch.bincount(z).max().item() / len(z)  # always guess the commonest element
    torch.manual_seed(0)
    hits = []
    with torch.no_grad():
        for _ in range(5):
            hits.append(module.losses(batch)["mask_acc"].item())
    assert sum(hits) / len(hits) > baseline + 0.1, (hits, baseline)


def test_contrast_loss_falls_and_positives_end_closer(shards, tmp_path, store):
    result = pretrain(config(shards, tmp_path, ("contrast",), max_steps=40, epochs=200))
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "train/contrast_loss")
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3
    module = module_from(result.last_checkpoint)
    torch.manual_seed(0)
    batch = collate_views(list(ShardDataset(shards, 4.5, views=2, seed=5)))
    with torch.no_grad():
        terms = module.losses(batch)
    assert terms["pos_sim"] > terms["neg_sim"] + 0.1, terms


def test_resume_continues_the_step_count_in_the_same_run(shards, tmp_path, store):
    first = pretrain(config(shards, tmp_path, max_steps=4, epochs=10, log_every_n_steps=1))
    assert first.global_step == 4 and first.encoder_path.is_file()
    second = pretrain(config(shards, tmp_path, max_steps=7, epochs=10, log_every_n_steps=1))
    assert second.global_step == 7 and second.run_id == first.run_id
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(first.run_id,
                                                                      "train/loss")]
    assert max(steps) >= 5
    encoder = load_encoder(second.encoder_path)
    assert encoder.checkpoint_meta["step"] == 7 and encoder.checkpoint_meta["selected_by"] == "last"


def test_probe_proxy_keeps_the_best_encoder(shards, tmp_path, store, shared_data):
    cfg = config(shards, tmp_path, max_steps=6, epochs=10)
    cfg["probe"] = {"data": str(shared_data / "qm9_sample3000.extxyz.gz"), "target": "u0_atom",
                    "every_n_steps": 3, "max_molecules": 40}
    result = pretrain(cfg)
    run = mlflow.MlflowClient().get_run(result.run_id)
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "probe/mae")
    assert sorted(m.step for m in history) == [0, 3, 6]
    best = min(history, key=lambda m: m.value)
    meta = load_encoder(result.encoder_path).checkpoint_meta
    assert meta["selected_by"] == "probe_mae" and meta["step"] == best.step
    assert run.data.tags["best_step"] == str(best.step)
    assert "collapse/effective_rank" in run.data.metrics


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(shards, tmp_path, store):
    result = pretrain(config(shards, tmp_path, max_steps=3, epochs=10, devices=2,
                             batch_size=4))
    assert result.global_step == 3 and result.encoder_path.is_file()


def test_cli_runs_and_rejects_bad_input(shards, tmp_path, store):
    runner = CliRunner()
    bad = runner.invoke(main, ["pretrain", "--set", "nonsense", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "key=value" in bad.output
    bad = runner.invoke(main, ["pretrain", "--objectives", "mask,foo", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "foo" in bad.output
    ok = runner.invoke(main, ["pretrain", "--shards", str(shards), "--objectives", "mask,denoise",
                              "--max-steps", "2", "--batch-size", "4",
                              "--set", "train.progress=false", "-o", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "pretrained 2 steps" in ok.output and (tmp_path / "o" / "encoder.pt").is_file()


def test_cli_default_corpus_builds_shards_in_outdir(tmp_path, store):
    out = tmp_path / "nci"
    result = CliRunner().invoke(main, [
        "pretrain", "--max-molecules", "4", "--conformers", "2", "--batch-size", "2",
        "--epochs", "2", "--max-steps", "3", "--seed", "1", "--set", "train.progress=false",
        "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out / "shards")
    assert manifest["molecules"] + manifest["failed"] == 4
    assert "pretrained 3 steps" in result.output
