"""Study children run on the executor and get its retries and time limits: a child whose
worker keeps dying and one that hangs are left for the next resume while the others finish,
and the resume finishes them (real process pool, real SQLite MLflow store)."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from molpre.executor.hooks import CRASH_ENV, HANG_ENV
from molpre.study import runner
from molpre.study.config import load_study_config

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"


@pytest.mark.slow  # about 90 s: a 45-s deadline must pass, then a resume
def test_a_dying_and_a_hanging_child_are_left_for_the_resume(tmp_path, monkeypatch, caplog):
    ase.io.write(tmp_path / "tiny.extxyz", ase.io.read(QM9, index=":40", format="extxyz"),
                 format="extxyz")
    config = load_study_config(raw={
        "name": "ex", "data": str(tmp_path / "tiny.extxyz"), "target": "gap",
        "out": str(tmp_path / "out"), "experiment": "ex", "scratch": False,
        "split": {"test_size": 10}, "budgets": [24], "seeds": {"small": 3, "large": 3},
        "baselines": ["mean"], "probes": {"enabled": False},
        "train": {"max_minutes": 0.01, "val_min": 6}, "workers": 2})
    monkeypatch.setattr(runner, "DEADLINE_GRACE_S", 45.0)  # baseline children take seconds
    assert runner.child_deadline_s(config) == pytest.approx(45.9)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(CRASH_ENV, "mean N24 s1")
    monkeypatch.setenv(HANG_ENV, "mean N24 s2")
    first = runner.run_study(config, uri)
    assert [r["seed"] for r in first.records] == [0]
    lost = [r.getMessage() for r in caplog.records if "did not finish" in r.getMessage()]
    assert any("N24 s1" in m and "worker process died" in m for m in lost), lost
    assert any("N24 s2" in m and "time limit exceeded" in m for m in lost), lost
    monkeypatch.delenv(CRASH_ENV)
    monkeypatch.delenv(HANG_ENV)
    again = runner.run_study(config, uri)
    assert again.reused == 1 and again.ran == 2
    assert sorted(r["seed"] for r in again.records) == [0, 1, 2]
    errors = [tuple(np.load(r["errors_file"]).round(9)) for r in again.records]
    assert len(set(errors)) == 3  # three seeds, three training means
