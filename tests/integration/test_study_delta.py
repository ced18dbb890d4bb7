"""A delta study end to end (real finetune, real KRR, real SQLite MLflow store).

The "cheap level" here is made from the target itself: ``E_cheap = (y - sum_Z n_Z b_Z) / 0.8
+ sum_Z n_Z c_Z`` (random per-element c). Then ``y - 0.8 * E_cheap`` is exactly per-element
linear, so with the cheap level the linear baseline must be exact and the fitted scale 0.8,
while without it the linear baseline errs by kcal/mol: the study must really read, match,
scale and add back the cheap energies, and score every arm on the target.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.study.config import StudyConfigError, load_study_config
from molpre.study.runner import run_study
from molpre.units import KCAL_PER_MOL_TO_EV

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"


def _cheap_file(frames, path):
    rng = np.random.default_rng(3)
    c = {z: rng.normal() * 50 for z in (1, 6, 7, 8, 9)}
    b = {1: -0.3, 6: -2.0, 7: -1.5, 8: -1.2, 9: -0.9}
    out = []
    for atoms in frames:
        y = atoms.info["u0_atom"] * KCAL_PER_MOL_TO_EV
        linear_b = sum(b[int(z)] for z in atoms.numbers)
        linear_c = sum(c[int(z)] for z in atoms.numbers)
        cheap = atoms.copy()
        cheap.info = {"mol_id": atoms.info["mol_id"], "level": "synthetic/cheap"}
        cheap.calc = SinglePointCalculator(cheap, energy=(y - linear_b) / 0.8 + linear_c)
        out.append(cheap)
    ase.io.write(path, out, format="extxyz")


@pytest.fixture(scope="module")
def delta_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("delta")
    frames = ase.io.read(QM9, index=":80", format="extxyz")
    ase.io.write(tmp / "data.extxyz", frames, format="extxyz")
    _cheap_file(frames, tmp / "cheap.extxyz")
    raw = {"name": "delta", "data": str(tmp / "data.extxyz"), "target": "u0_atom",
           "unit": "kcal/mol", "out": str(tmp / "out"), "experiment": "study-delta",
           "split": {"kind": "permutation", "test_size": 30, "seed": 0}, "budgets": [40],
           "seeds": {"small": 1, "large": 1}, "baselines": ["linear", "krr"],
           "krr": {"sigmas": [8.0, 32.0], "lambdas": [1e-8, 1e-4], "folds": 3},
           "train": {"epochs": 3, "patience": 3, "max_minutes": 3, "val_min": 6},
           "probes": {"enabled": False}, "delta": {"data": [str(tmp / "cheap.extxyz")]}}
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    return tmp, raw, uri, run_study(load_study_config(raw=raw), uri)


def test_delta_study_fits_the_scale_and_scores_on_the_target(delta_study):
    _, _, _, result = delta_study
    by_arm = {r["arm"]: r for r in result.records}
    assert set(by_arm) == {"linear", "krr", "scratch"}
    for record in by_arm.values():
        assert record["delta_level"] == "synthetic/cheap"
        assert record["delta_scale"] == pytest.approx(0.8, abs=1e-6)
    assert by_arm["linear"]["test_mae"] < 1e-3  # exact with the cheap level...
    assert by_arm["krr"]["test_mae"] < 0.05
    assert "Delta learning" in (result.out / "report.md").read_text()
    assert result.summary["delta"]["level"] == "synthetic/cheap"


def test_a_neural_childs_saved_model_adds_the_cheap_level_back(delta_study):
    """The child models once carried no delta: loaded by the Predictor they gave the
    residual ``y - s * E_cheap`` as ``energy_ev``."""
    from molpre import Predictor

    _, _, _, result = delta_study
    (record,) = [r for r in result.records if r["arm"] == "scratch"]
    predictor = Predictor.load(result.out / "children" / "scratch-N40-s0", progress=False)
    assert predictor.delta is not None
    assert predictor.delta.scale == pytest.approx(record["delta_scale"], abs=1e-9)
    assert predictor.delta.level == "synthetic/cheap"
    # a level molpre cannot compute is an error row naming it, not a residual as an energy
    frame = ase.io.read(QM9, index="0", format="extxyz")
    table = predictor.predict([frame])
    assert table["status"].tolist() == ["error"] and "synthetic/cheap" in table["error"][0]


def test_the_same_study_without_the_cheap_level_is_far_off(delta_study):
    tmp, raw, uri, _ = delta_study
    plain = {**raw, "name": "plain", "out": str(tmp / "plain"), "baselines": ["linear"],
             "scratch": False, "delta": {"data": []}}
    result = run_study(load_study_config(raw=plain), uri)
    (record,) = result.records
    assert record["test_mae"] > 1.0 and "delta_level" not in record


def test_a_molecule_without_a_cheap_energy_stops_the_study_before_any_child(delta_study):
    tmp, raw, uri, _ = delta_study
    frames = ase.io.read(tmp / "cheap.extxyz", index=":70")
    ase.io.write(tmp / "short.extxyz", frames, format="extxyz")
    short = {**raw, "name": "short", "out": str(tmp / "short"),
             "delta": {"data": [str(tmp / "short.extxyz")]}}
    with pytest.raises(ValueError, match="10 of 80 molecules .* no cheap-level energy"):
        run_study(load_study_config(raw=short), uri)


def test_delta_config_is_checked():
    with pytest.raises(StudyConfigError, match="delta.scal"):
        load_study_config(raw={"data": "x.extxyz", "delta": {"scal": 1.0}})


def test_report_only_runs_nothing_and_reports_every_finished_budget(delta_study):
    _, raw, uri, first = delta_study
    other = load_study_config(raw={**raw, "budgets": [60]})
    result = run_study(other, uri, report_only=True)
    assert result.ran == 0 and result.reused == len(first.records)
    assert result.parent_run_id == first.parent_run_id
    assert result.summary["budgets"] == [40, 60]  # the finished N=40 children are reported
    assert "| 40 |" in (result.out / "report.md").read_text()


def test_an_ensemble_child_is_a_committee_scored_by_its_mean(delta_study):
    from molpre import Predictor

    tmp, raw, uri, first = delta_study
    ens = {**raw, "name": "ens", "out": str(tmp / "ens"), "baselines": [],
           "train": {**raw["train"], "epochs": 2, "ensemble": 2}}
    result = run_study(load_study_config(raw=ens), uri)
    (record,) = result.records
    assert np.isfinite(record["test_mae"]), record.get("failure_reason")
    predictor = Predictor.load(result.out / "children" / "scratch-N40-s0", progress=False)
    assert predictor.model.size == 2 and predictor.delta is not None
