"""A tiny study end to end in a real SQLite MLflow store (real finetunes, real KRR).

Arms: scratch; ``same``: an "encoder" that is exactly the random init of seed 0, with its
control (the same init) - two identical arms; ``bad``: corrupted weights, a harmful
initialization that must come out as negative transfer, its children flagged failed.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import ase.io
import mlflow
import pytest
import torch

from molpre.models.encoder import save_encoder
from molpre.models.presets import resolve_config
from molpre.study import stats
from molpre.study.config import load_study_config
from molpre.study.encoders import initial_encoder
from molpre.study.runner import run_study

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"
BUDGETS, SEEDS = [24, 48], 2


def _encoders(tmp: Path) -> tuple[Path, Path]:
    same = initial_encoder(resolve_config("small"), 0)
    save_encoder(same, tmp / "same.pt")
    bad = initial_encoder(resolve_config("small"), 1)
    with torch.no_grad():
        for p in bad.parameters():
            p.mul_(6.0).add_(torch.randn_like(p))
    save_encoder(bad, tmp / "bad.pt")
    return tmp / "same.pt", tmp / "bad.pt"


def tiny_raw(tmp: Path) -> dict:
    frames = ase.io.read(QM9, index=":110", format="extxyz")
    ase.io.write(tmp / "tiny.extxyz", frames, format="extxyz")
    same, bad = _encoders(tmp)
    return {
        "name": "tiny", "data": str(tmp / "tiny.extxyz"), "target": "u0_atom", "unit": "kcal/mol",
        "out": str(tmp / "out"), "experiment": "study-tiny",
        "split": {"kind": "permutation", "test_size": 40, "seed": 0},
        "budgets": BUDGETS, "seeds": {"small": SEEDS, "large": SEEDS, "small_max": 48},
        "encoders": [
            {"name": "same", "path": str(same), "modes": ["full"], "control": ["full"], "seed": 0},
            {"name": "bad", "path": str(bad), "modes": ["full"], "control": []},
        ],
        "baselines": ["linear", "krr"],
        "krr": {"sigmas": [8.0, 32.0], "lambdas": [1e-8, 1e-4], "folds": 3},
        "train": {"epochs": 12, "patience": 12, "max_minutes": 5, "val_min": 6, "lr": 1e-2},
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    uri = f"sqlite:///{tmp / 'store' / 'mlflow.db'}"
    (tmp / "store").mkdir()
    config = load_study_config(raw=tiny_raw(tmp))
    start = time.perf_counter()
    result = run_study(config, uri)
    return tmp, uri, config, result, time.perf_counter() - start


def test_tiny_study_leaves_parent_children_metrics_and_figure(study):
    tmp, uri, config, result, seconds = study
    client = mlflow.MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs([result.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    arms = {"linear", "krr", "scratch", "same:full", "same:control-full", "bad:full"}
    assert len(children) == len(arms) * len(BUDGETS) * SEEDS
    for run in children:
        p = run.data.params
        assert p["arm"] in arms and int(p["budget"]) in BUDGETS and int(p["seed"]) < SEEDS
        assert "encoder" in p and run.data.tags["study.done"] == "1"
        assert run.info.run_name == f"{p['arm']} N{p['budget']} s{p['seed']}"  # short
        assert "kcal/mol" in run.data.tags["mlflow.note.content"]
        assert "test_mae_kcal" in run.data.metrics
        assert run.data.tags["encoder_name"] in ("none", "same", "bad")  # a name, not a path
        mae = run.data.metrics["test_mae_kcal"]
        if mae == mae:  # a rounded copy for the runs table (none for a diverged child)
            assert run.data.metrics["mae_kcal"] == float(f"{mae:.4g}")
        assert {i.dataset.name.split()[-1] for i in run.inputs.dataset_inputs} == {"test", f"seed={p['seed']}"}
    assert "test_mae_kcal.linear.N24.mean" in parent.data.metrics
    assert "failed.bad_full.N24" in parent.data.metrics or "failed.bad:full.N24" in parent.data.metrics
    arts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"summary.json", "report.md", "report.html", "learning_curve.png"} <= arts
    # artifacts live in the store's own folder, not ./mlruns
    assert list((tmp / "store" / "mlartifacts").rglob("learning_curve.png"))
    # the runs view a user opens: the answer on the parent's row, short rounded columns
    from molpre.cli.ui import runs_url, shared_view

    experiment = client.get_experiment(result.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.molpre-study"])
    columns = view["selectedColumns"]
    assert columns[:6] == ["metrics.`mae_kcal`", "metrics.`mae_kcal_lo`", "metrics.`mae_kcal_up`",
                           "metrics.`savings_x`", "tags.`verdict`", "tags.`best_arm`"]
    assert "tags.`encoder_name`" in columns and "params.`encoder`" not in columns
    # budget and seed from the study's tags (a taught child's param `budget` is its label count)
    assert {"tags.`study.budget`", "tags.`study.seed`"} <= set(columns)
    for r in result.records:
        tags = client.get_run(r["run_id"]).data.tags
        assert (tags["study.budget"], tags["study.seed"]) == (str(r["budget"]), str(r["seed"]))
    best = result.summary["table"][parent.data.tags["best_arm"]][str(BUDGETS[-1])]
    assert parent.data.metrics["mae_kcal"] == float(f"{best['mean']:.4g}")
    assert parent.data.metrics["mae_kcal_lo"] <= parent.data.metrics["mae_kcal"] <= \
        parent.data.metrics["mae_kcal_up"]
    assert parent.data.tags["verdict"].startswith(("no detectable effect", "negative transfer",
                                                   "gain"))
    assert parent.data.tags["answer"].startswith(f"N={BUDGETS[-1]}:")
    note = parent.data.tags["mlflow.note.content"]
    assert "**Answer.**" in note and "```" in note and "\n#" not in note and "[" not in note
    assert not any(re.match(view["chartsSearchFilter"], k) for k in parent.data.metrics
                   if k != "mae_kcal")
    assert view["runsPinned"] == [result.parent_run_id]
    assert re.match(view["chartsSearchFilter"], "mae_kcal")
    assert re.match(view["chartsSearchFilter"], "val_mae_mev_clipped")
    bad = next(r for r in result.records if r["arm"] == "bad:full")
    history = client.get_metric_history(bad["run_id"], "val_mae_mev_clipped")
    raw = client.get_metric_history(bad["run_id"], "val_mae_mev")
    clip = {m.step: m.value for m in history}
    top = max(clip.values())  # twice the baseline's validation error
    assert clip and all(clip[m.step] == (min(m.value, top) if m.value == m.value else top)
                        for m in raw)
    assert top < max(m.value for m in raw if m.value == m.value)  # the diverged child, clipped
    assert runs_url(5000, result.experiment_id, shared_view(uri, result.experiment_id)).endswith(
        f"/#/experiments/{result.experiment_id}/runs?workflowType=machine_learning"
        "&viewStateShareKey=molpre-study")
    # frozen-embedding probes of each encoder and its init: on the parent and in the report
    for name in ("same", "same_init", "bad"):
        assert f"probe_test_mae_kcal.{name}.ridge" in parent.data.metrics
        assert 0 <= parent.data.metrics[f"probe_lasso_dims.{name}"] <= result.summary["probes"]["same"]["dims"]
    assert "Frozen-embedding probes" in (Path(config.out) / "report.md").read_text()
    html = (Path(config.out) / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    print(f"tiny study: {seconds:.0f} s for {len(children)} children")


def test_harmful_init_is_negative_transfer_and_its_failures_are_flagged(study):
    _, uri, _, result, _ = study
    summary = result.summary
    for b in map(str, BUDGETS):
        assert summary["comparisons"]["bad:full"][b]["verdict"] == stats.NEGATIVE
    failed = [r for r in result.records if r["arm"] == "bad:full"]
    assert failed and all(r["failed"] for r in failed)
    client = mlflow.MlflowClient(uri)
    assert client.get_run(failed[0]["run_id"]).data.tags["failed"] == "true"
    assert "bad:full" in (Path(result.out) / "report.md").read_text().split("Failed children")[1]
    # failed children are not averaged in
    assert summary["table"]["bad:full"][str(BUDGETS[0])]["n"] == 0


def test_identical_arms_show_no_detectable_effect(study):
    _, _, _, result, _ = study
    by = {(r["arm"], r["budget"], r["seed"]): r["test_mae"] for r in result.records}
    for b in BUDGETS:
        same = {s: by[("same:full", b, s)] for s in range(SEEDS)}
        control = {s: by[("same:control-full", b, s)] for s in range(SEEDS)}
        assert same == control  # the control really is the same path from the same weights
        diff = stats.paired_difference(same, control)
        assert diff.interval.mean == 0 and diff.p_value == 1.0
        assert stats.direction(diff) == stats.NO_EFFECT
        assert stats.verdict(diff, diff)[0] == stats.NO_EFFECT


def test_rerun_resumes_without_rerunning_children(study):
    tmp, uri, config, first, _ = study
    again = run_study(config, uri)
    assert again.ran == 0 and again.reused == len(first.records)
    assert again.parent_run_id == first.parent_run_id


@pytest.mark.slow
def test_mlflow_server_serves_the_study(study):
    import subprocess

    from molpre.cli.ui import free_port, runs_url, server_command, stop_server

    _, uri, _, result, _ = study
    port = free_port()
    proc = subprocess.Popen(server_command(uri, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        body = json.dumps({"experiment_ids": [result.experiment_id], "max_results": 1000}).encode()
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(req, timeout=30).read())["runs"]
        ids = {r["info"]["run_id"] for r in runs}
        assert result.parent_run_id in ids
        assert {r["run_id"] for r in result.records} <= ids
        assert runs_url(port, result.experiment_id).endswith(
            f"/#/experiments/{result.experiment_id}/runs?workflowType=machine_learning")
    finally:
        stop_server(proc)
