"""`molpre demo` end to end, in-process, at toy sizes (real RDKit, PySCF, Lightning, MLflow)."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
from click.testing import CliRunner

from molpre.cli import main


def test_demo_runs_every_stage_and_tracks_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, [
        "demo", "-o", str(out), "--molecules", "40", "--label-molecules", "10",
        "--pretrain-steps", "4", "--finetune-epochs", "2",
    ])
    assert result.exit_code == 0, result.output
    for stage in range(1, 7):
        assert f"[{stage}/6]" in result.output
    assert (out / "labels.db").is_file() and (out / "pretrain" / "encoder.pt").is_file()

    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions["status"]) == ["ok", "ok", "ok", "error", "error"]
    assert predictions.loc[predictions.status == "ok", "energy_ev"].lt(0).all()
    assert predictions.loc[predictions.status == "error", "energy_ev"].isna().all()
    assert "Si" in predictions.loc[3, "error"]

    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["molpre-demo"])
    names = set(runs["tags.mlflow.runName"])
    assert {"demo-pretrain", "demo-finetune-scratch", "demo-finetune-full"} <= names
    finetunes = runs[runs["tags.mlflow.runName"].str.startswith("demo-finetune")]
    assert finetunes["metrics.test_mae_mev"].map(math.isfinite).all()
    assert finetunes["metrics.test_forces_mae_mev_per_a"].map(math.isfinite).all()  # forces on
    assert finetunes["tags.git_sha"].notna().all()
