"""`molpre demo` end to end, in-process, at toy sizes (real RDKit, PySCF, Lightning, MLflow),
then again on the same folder: the second run must reuse conformers, labels, the pretrained
encoder and the study's finished children."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
from click.testing import CliRunner

from molpre.cli import main

ARMS = ("linear", "scratch", "pretrained:full", "pretrained:control-full")
BUDGETS, SEEDS = (6, 12), 2
TOY = ["--molecules", "300", "--label-molecules", "24", "--pretrain-steps", "4",
       "--finetune-epochs", "2", "--seeds", str(SEEDS), "--workers", "1",
       "--set", f"budgets=[{','.join(map(str, BUDGETS))}]", "--set", "test_size=10",
       "--set", "val_min=2", "--set", "patience=2"]


def _demo(out: Path) -> str:
    result = CliRunner().invoke(main, ["demo", "-o", str(out), *TOY])
    assert result.exit_code == 0, result.output
    return result.output


def _runs(out: Path) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["molpre-demo"])


def _label_rows(out: Path) -> int:
    with sqlite3.connect(out / "labels.db") as db:
        return db.execute("SELECT COUNT(*) FROM systems").fetchone()[0]


def test_demo_runs_a_study_and_a_second_run_reuses_everything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    first = _demo(out)
    for stage in (1, 2, 5):
        assert f"[{stage}/5]" in first
    assert "[3/5] free labels + [4/5] pretraining" in first and "at gfn2-xtb" in first
    labeled = re.search(r"24 conformers: (\d+) ok, 0 failed", first)  # less any duplicates
    assert labeled and int(labeled[1]) >= 20 and "(reused)" not in first
    answer = first.split("== Does pretraining save labels here?")[1]
    header = next(line for line in answer.splitlines() if line.lstrip().startswith("N "))
    assert sorted(header.split()[1:]) == sorted(ARMS)  # a column per arm
    for budget in BUDGETS:
        assert any(line.split()[:1] == [str(budget)] for line in answer.splitlines())
        assert f"pretrained:full N={budget}:" in answer  # a verdict line per budget
    assert "models:/molpre-demo@champion" in answer

    runs = _runs(out)
    parents = runs[runs["tags.stage"] == "study"]
    assert len(parents) == 1
    parent = parents.iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent.run_id]
    assert len(children) == len(ARMS) * len(BUDGETS) * SEEDS
    assert set(children["params.arm"]) == set(ARMS)
    assert (children["tags.study.done"] == "1").all()
    assert (runs["tags.stage"] == "pretrain").sum() == 1
    # pretrained with seed --seed + 1000: the control never starts from a scratch seed's weights
    assert runs.loc[runs["tags.stage"] == "pretrain", "params.seed"].item() == "1000"
    assert parent.artifact_uri.startswith((out / "mlartifacts").resolve().as_uri())
    assert not (tmp_path / "mlruns").exists()  # artifacts inside OUT, not the working dir
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("molpre-demo", "champion")
    assert version.run_id in set(children["run_id"])  # the registered model is a study child

    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions["status"]) == ["ok", "ok", "ok", "error", "error"]
    assert predictions.loc[predictions.status == "ok", "energy_ev"].lt(0).all()
    assert "Si" in predictions.loc[3, "error"]
    rows, encoder_mtime = _label_rows(out), (out / "pretrain" / "encoder.pt").stat().st_mtime

    second = _demo(out)
    assert re.search(r"24 conformers: 0 ok, 0 failed, 2[34] skipped \(already stored\)", second)
    assert "(reused)" in second.split("[3/5]")[1].splitlines()[0]
    assert f"0 children run, {len(children)} reused; parent run {parent.run_id}" in second
    assert header in second
    assert _label_rows(out) == rows
    assert (out / "pretrain" / "encoder.pt").stat().st_mtime == encoder_mtime
    again = _runs(out)
    assert len(again) == len(runs)  # no new children, no new pretraining run
    assert len(client.search_model_versions("name='molpre-demo'")) == 1  # registered once
