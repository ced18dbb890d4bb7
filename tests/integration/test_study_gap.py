"""`molpre study` of the HOMO-LUMO gap (an intensive target) end to end on a tiny QM9 set:
the study scores any registry target through its kind, with the training mean and KRR as
baselines and errors in meV (real finetunes, real KRR, a real SQLite MLflow store)."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.datasets import load_labeled
from molpre.data.splits import make_split, read_ids, rows_matching

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"
BUDGETS = (24, 40)
HARTREE_EV = 27.211386024367243


@pytest.fixture(scope="module")
def gap_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gap")
    ase.io.write(tmp / "tiny.extxyz", ase.io.read(QM9, index=":70", format="extxyz"),
                 format="extxyz")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    sets = ["name=gap-tiny", "target=gap", "split.test_size=20", "budgets=[24, 40]",
            "seeds.small=2", "seeds.large=2", "probes.enabled=false",
            "krr.sigmas=[8.0, 32.0]", "krr.lambdas=[1e-8, 1e-4]", "krr.folds=3",
            "train.epochs=8", "train.patience=8", "train.val_min=6", "train.lr=1e-2"]
    args = ["study", "--data", str(tmp / "tiny.extxyz"), "--out", str(tmp / "out"),
            "--experiment", "gap-tiny", "--tracking-uri", uri]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    return tmp, uri, summary


def test_gap_study_has_mean_krr_and_scratch_arms_in_mev(gap_study):
    tmp, uri, summary = gap_study
    assert summary["target"] == "gap" and summary["unit"] == "meV"
    assert summary["metric"] == "test_mae_gap_mev"
    assert set(summary["table"]) <= {"mean", "krr", "scratch"}
    children = summary["children"]
    assert {(r["arm"], r["budget"]) for r in children} == {
        (a, b) for a in ("mean", "krr", "scratch") for b in BUDGETS}
    assert all(r["unit"] == "meV" and np.isfinite(r["test_mae"]) for r in children)
    report = (tmp / "out" / "report.md").read_text()
    assert "test MAE (meV)" in report and "kcal/mol" not in report
    parent = mlflow.MlflowClient(uri).get_run(summary["parent_run_id"])
    assert "test_mae_gap_mev.mean.N24.mean" in parent.data.metrics


def test_the_mean_baseline_is_the_training_mean_of_the_childs_labels(gap_study):
    """Recomputed by hand from the file: Hartree labels, the child's own nested split."""
    tmp, _, summary = gap_study
    data = load_labeled(tmp / "tiny.extxyz", "gap")
    gap = np.array([a.info["gap"] for a in data.atoms]) * HARTREE_EV
    np.testing.assert_allclose(data.labels["gap"], gap, rtol=1e-12)
    test = rows_matching(read_ids(tmp / "out" / "test_ids.txt"), data.mol_ids, data.groups)
    for r in [r for r in summary["children"] if r["arm"] == "mean"]:
        val = min(0.5, max(0.1, 6 / r["budget"]))
        split = make_split(data.groups, seed=r["seed"], split_seed=0, test_rows=test,
                           budget=r["budget"], val_fraction=val)
        train = np.concatenate([split.train, split.val])
        expected = np.abs(gap[train].mean() - gap[split.test]).mean() * 1000.0
        assert r["test_mae"] == pytest.approx(expected, rel=1e-9)
        errors = np.load(r["errors_file"])
        assert errors.mean() * 1000.0 == pytest.approx(r["test_mae"], rel=1e-9)


def test_a_neural_childs_errors_are_its_logged_gap_metric(gap_study):
    _, uri, summary = gap_study
    client = mlflow.MlflowClient(uri)
    for r in [r for r in summary["children"] if r["arm"] == "scratch"]:
        run = client.get_run(r["run_id"])
        assert run.data.metrics["test_mae_gap_mev"] == pytest.approx(r["test_mae"], rel=1e-9)
        assert np.load(r["errors_file"]).mean() * 1000.0 == pytest.approx(r["test_mae"], rel=1e-6)
        assert "meV" in run.data.tags["mlflow.note.content"]
        assert "baseline_test_mae_gap_mev" in run.data.metrics
    assert Path(summary["children"][0]["errors_file"]).is_file()
