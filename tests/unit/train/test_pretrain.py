"""pretrain(): masked atoms learn, contrast separates pairs, resume continues, CLI runs."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from molpre.chem import records_from_smiles
from molpre.cli import main
from molpre.data import keys
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import build_shards, read_manifest
from molpre.models.encoder import load_encoder
from molpre.train import objectives as obj
from molpre.train.anneal import anneal_factor
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


def config(shards, outdir, objectives=("mask", "contrast", "denoise"), **train):
    weights = {name: {"weight": 1.0 if name in objectives else 0.0}
               for name in ("mask", "contrast", "denoise")}
    return {"output": str(outdir), "seed": 0, "corpus": {"shards": str(shards)},
            "objectives": weights,
            "train": {"batch_size": 8, "lr": 3e-3, "progress": False, "log_every_n_steps": 5,
                      "accelerator": "cpu", **train},
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
    assert terms["contrast_pos_sim"] > terms["contrast_neg_sim"] + 0.1, terms


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
    threads = torch.get_num_threads()
    try:
        ok = runner.invoke(main, ["pretrain", "--shards", str(shards), "--objectives",
                                  "mask,denoise", "--max-steps", "2", "--batch-size", "4",
                                  "--threads", "2", "--accelerator", "cpu",
                                  "--set", "train.progress=false", "-o", str(tmp_path / "o")])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert ok.exit_code == 0, ok.output
    held = read_manifest(shards)["molecules"]
    assert f"pretrained 2 steps on {held} molecules" in ok.output  # every shard molecule
    assert (tmp_path / "o" / "encoder.pt").is_file()


def test_max_molecules_on_shards_is_stated_not_silent(shards, tmp_path, store):
    """A run that draws from part of the shards says so (it once printed the shards' total)."""
    held = read_manifest(shards)["molecules"]
    result = CliRunner().invoke(main, [
        "pretrain", "--shards", str(shards), "--max-molecules", "8", "--objectives", "denoise",
        "--max-steps", "1", "--batch-size", "4", "--accelerator", "cpu",
        "--set", "train.progress=false", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert f"on the first 8 of {held} molecules" in result.output
    run_id = json.loads((tmp_path / "o" / "run.json").read_text())["run_id"]
    assert mlflow.MlflowClient().get_run(run_id).data.tags["corpus.molecules_used"] == "8"


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


# --- a new objective is one class, defined here, with no change to molpre ------------------


@dataclass(frozen=True)
class AtomCountOptions:
    scale: float = 10.0  # atoms


@obj.register
class AtomCount(obj.Objective):
    """Toy objective: predict each molecule's atom count (/ scale) from its embedding."""

    name = "atom_count"
    Options = AtomCountOptions

    def build_head(self, dims):
        return torch.nn.Linear(dims.features, 1)

    def loss(self, out):
        predicted = self.head(out[keys.GRAPH_EMBEDDING]).squeeze(-1)
        target = out[keys.NUM_ATOMS].to(predicted.dtype) / self.options.scale
        loss = F.mse_loss(predicted, target)
        return loss, {"mae": (predicted - target).abs().mean() * self.options.scale}


def test_an_objective_defined_in_a_test_plugs_into_pretraining(shards, tmp_path, store):
    sections = {name: {"weight": 0.0} for name in obj.BUILTIN}
    sections["atom_count"] = {"weight": 1.0, "scale": 10}
    cfg = config(shards, tmp_path, (), max_steps=30, epochs=100, log_every_n_steps=1)
    cfg["objectives"] = sections
    result = pretrain(cfg)
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "train/atom_count_loss")
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(values) >= 20 and sum(values[-5:]) / 5 < sum(values[:5]) / 5
    module = module_from(result.last_checkpoint)  # rebuilt from the weights-only checkpoint
    assert list(module.objectives) == ["atom_count"]
    assert isinstance(module.objectives["atom_count"].head, torch.nn.Linear)
    # nothing in molpre names the toy objective: adding it touched 0 files there
    package = Path(obj.__file__).parents[2]
    assert not [f for f in package.rglob("*.py") if "atom_count" in f.read_text()]


def test_unknown_objective_option_is_one_clear_error(shards, tmp_path, store):
    cfg = config(shards, tmp_path)
    cfg["objectives"]["mask"]["wieght"] = 0.0
    with pytest.raises(ValueError, match="objectives.mask.wieght"):
        pretrain(cfg)


# --- resume, Ctrl-C, retention ------------------------------------------------------------


def saved_step(path: Path) -> int:
    """global_step of a checkpoint (-1 when absent)."""
    if not path.is_file():
        return -1
    return int(torch.load(path, weights_only=True, map_location="cpu")["global_step"])


def cli_args(shards, outdir, max_steps: int) -> list[str]:
    return ["pretrain", "--shards", str(shards), "--objectives", "mask", "--batch-size", "4",
            "--max-steps", str(max_steps), "--epochs", "1000", "--accelerator", "cpu",
            "--checkpoint-every", "2", "--keep-checkpoints", "2",
            "--set", "train.progress=false", "--set", "train.log_every_n_steps=1",
            "--set", "monitor.every_n_steps=1000", "-o", str(outdir)]


def start_cli(shards, outdir) -> subprocess.Popen:
    """``molpre pretrain`` in a subprocess, long enough to be stopped mid-run."""
    return subprocess.Popen([sys.executable, "-m", "molpre", *cli_args(shards, outdir, 5000)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def wait_for_checkpoint(proc: subprocess.Popen, last: Path, step: int, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while saved_step(last) < step:
        if proc.poll() is not None:
            raise AssertionError(f"pretrain ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no checkpoint in time")
        time.sleep(0.2)


def test_sigkill_mid_run_then_rerun_resumes_in_the_same_run(shards, tmp_path, store):
    out = tmp_path / "killed"
    proc = start_cli(shards, out)
    wait_for_checkpoint(proc, out / "last.ckpt", 4)
    proc.kill()  # SIGKILL: nothing runs after this
    proc.wait()
    step = saved_step(out / "last.ckpt")
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "RUNNING"  # what a kill leaves behind
    assert len(list((out / "checkpoints").glob("step=*.ckpt"))) <= 2
    again = CliRunner().invoke(main, cli_args(shards, out, step + 3))
    assert again.exit_code == 0, again.output
    assert f"pretrained {step + 3} steps" in again.output and run_id in again.output
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train/loss"))
    assert steps[0] == 0 and step in steps and steps[-1] == step + 2  # logged before the step
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])].count(run_id) == 1
    assert len(client.search_runs([run.info.experiment_id], f"attributes.run_name = '{run.info.run_name}'")) >= 1
    kept = sorted((out / "checkpoints").glob("step=*.ckpt"))
    assert 1 <= len(kept) <= 2 and saved_step(kept[-1]) <= step + 3


def test_ctrl_c_saves_last_ckpt_and_marks_the_run_killed(shards, tmp_path, store):
    out = tmp_path / "interrupted"
    proc = start_cli(shards, out)
    wait_for_checkpoint(proc, out / "last.ckpt", 2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert line.startswith("molpre pretrain: interrupted at step ") and run_id in line, stderr
    step = int(line.split("at step ")[1].split(";")[0])
    assert saved_step(out / "last.ckpt") == step >= 2
    assert mlflow.MlflowClient().get_run(run_id).info.status == "KILLED"


def test_periodic_checkpoints_keep_only_the_newest(shards, tmp_path, store):
    result = pretrain(config(shards, tmp_path, ("mask",), max_steps=9, epochs=100, batch_size=4,
                             checkpoint_every_n_steps=2, keep_checkpoints=2))
    kept = sorted((tmp_path / "checkpoints").glob("step=*.ckpt"))
    assert [p.name for p in kept] == ["step=00000006.ckpt", "step=00000008.ckpt"]
    assert saved_step(result.last_checkpoint) == 9
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "checkpoints").glob(".*"))


def test_corpus_of_only_rejected_molecules_is_one_line_error(tmp_path, store):
    corpus = tmp_path / "bad.smi"
    corpus.write_text("not_a_smiles\nC1CC\nXx\n")
    result = CliRunner().invoke(main, ["pretrain", "--corpus", str(corpus), "--conformers", "1",
                                       "--set", "train.progress=false", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and not isinstance(result.exception, IndexError)
    assert "no usable molecule" in result.output and "failures.csv" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_run_killed_before_its_first_checkpoint_is_not_left_running(shards, tmp_path, store):
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("molpre-pretrain")
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment("molpre-pretrain"))
    orphan = client.create_run(experiment_id).info.run_id  # RUNNING, as a kill leaves it
    (tmp_path / "run.json").write_text(json.dumps({"run_id": orphan}))
    result = pretrain(config(shards, tmp_path, ("mask",), max_steps=2, epochs=10, batch_size=4))
    assert result.run_id != orphan and client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_resume_into_a_run_the_store_lacks_is_one_clear_error(shards, tmp_path, store):
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "0" * 32}))
    (tmp_path / "last.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="run.json names MLflow run 0+, which the tracking store"):
        pretrain(config(shards, tmp_path, ("mask",), max_steps=2, epochs=10))


def lr_history(run_id: str) -> dict[int, float]:
    history = mlflow.MlflowClient().get_metric_history(run_id, "train/lr")
    return {m.step: m.value for m in history}


def test_a_run_cools_down_over_its_last_half_and_a_resume_over_its_own_budget(
        shards, tmp_path, store):
    base = 3e-3
    first = pretrain(config(shards, tmp_path, ("mask",), max_steps=10, epochs=100,
                            log_every_n_steps=1, anneal=0.5))
    lrs = lr_history(first.run_id)
    early = [lr for step, lr in lrs.items() if step < 5]
    late = [lrs[step] for step in sorted(lrs) if step >= 6]
    assert early and all(lr == pytest.approx(base) for lr in early)
    assert all(a > b for a, b in zip(late, late[1:], strict=False)), late
    assert late[-1] < 0.2 * base
    # resumed to step 20 with the whole run cooling down: it starts again from lr, since its
    # budget is the 10 steps it has left, and ends near the floor
    second = pretrain(config(shards, tmp_path, ("mask",), max_steps=20, epochs=100,
                             log_every_n_steps=1, anneal=1.0))
    assert second.run_id == first.run_id and second.global_step == 20
    lrs = lr_history(first.run_id)
    resumed = [lrs[step] for step in sorted(lrs) if step >= 11]
    assert resumed[0] > 0.9 * base
    assert resumed[-1] < 0.1 * base
    expected = base * anneal_factor(9 / 10, 1.0)  # the last batch: 9 of the 10 steps done
    assert math.isclose(resumed[-1], expected, rel_tol=1e-3), (resumed[-1], expected)
