"""A delta study end to end (real finetune, real KRR, real SQLite MLflow store).

The "cheap level" here is made from the target itself: ``E_cheap = (y - sum_Z n_Z b_Z) / 0.8
+ sum_Z n_Z c_Z`` (random per-element c). Then ``y - 0.8 * E_cheap`` is exactly per-element
linear, so with the cheap level the linear baseline must be exact and the fitted scale 0.8,
while without it the linear baseline errs by kcal/mol: the study must really read, match,
scale and add back the cheap energies, and score every arm on the target.
"""

from __future__ import annotations

import dataclasses

import ase.io
import numpy as np
import pandas as pd
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


# -- taught arms (molpre.study.teaching): a plain study whose ``scratch+taught`` is taught by
# the delta study above. The teacher's labels of the pool are checked against an independent
# path: on the teacher's own test molecules, ``teacher_labels`` must reproduce the errors its
# study recorded (those came from the model's raw output on the delta data).


def _taught_raw(tmp, raw: dict, **changes) -> dict:
    return {**raw, "name": "taught", "out": str(tmp / "taught"), "baselines": ["linear"],
            "delta": {"data": []}, "teach": {"study": raw["out"]}, **changes}


@pytest.fixture(scope="module")
def taught_study(delta_study):
    tmp, raw, uri, teacher = delta_study
    result = run_study(load_study_config(raw=_taught_raw(tmp, raw)), uri)
    return tmp, raw, uri, teacher, result


def test_a_taught_arm_runs_beside_its_arm_on_the_pool_the_teacher_labeled(taught_study):
    from molpre.data.datasets import load_labeled

    tmp, raw, uri, teacher, result = taught_study
    by_arm = {r["arm"]: r for r in result.records}
    assert set(by_arm) == {"linear", "scratch", "scratch+taught"}
    assert np.isfinite(by_arm["scratch+taught"]["test_mae"])
    data = load_labeled(raw["data"], raw["target"], raw["unit"])
    own = pd.read_csv(result.out / "children" / "scratch-N40-s0" / "split.csv")
    taught = pd.read_csv(result.out / "children" / "scratch+taught-N40-s0" / "taught_split.csv")
    parts = {p: set(own.mol_id[own.part == p]) for p in ("train", "val", "test")}
    taught_parts = {p: set(taught.mol_id[taught.part == p]) for p in ("train", "val", "test")}
    assert taught_parts["val"] == parts["val"] and taught_parts["test"] == parts["test"]
    pool = set(data.mol_ids) - parts["train"] - parts["val"] - parts["test"]
    assert len(pool) == 80 - 30 - 40
    assert taught_parts["train"] == parts["train"] | pool  # the pool, never a test molecule
    import mlflow

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(by_arm["scratch+taught"]["run_id"])
    assert run.data.tags["taught.n"] == "10" and run.data.tags["taught.untaught"] == "0"
    assert run.data.tags["taught.teacher"].endswith("scratch-N40-s0")


def test_the_teachers_labels_reproduce_its_own_recorded_test_errors(taught_study):
    from pathlib import Path

    tmp, raw, uri, teacher, result = taught_study
    _assert_recorded_errors_are_the_saved_models(
        Path(teacher.out) / "children" / "scratch-N40-s0", raw, teacher.summary["delta"]["data"])


def test_the_report_tables_the_taught_arm(taught_study):
    *_, result = taught_study
    assert "scratch+taught" in result.summary["table"]
    assert result.summary["teaching"] == {}  # one seed: no paired interval (unit-tested)
    assert "scratch+taught" in (result.out / "report.md").read_text()


def test_a_missing_teacher_stops_the_study_before_any_child(taught_study):
    tmp, raw, uri, teacher, _ = taught_study
    two = _taught_raw(tmp, raw, name="two", out=str(tmp / "two"),
                      seeds={"small": 2, "large": 2})  # the teacher ran seed 0 only
    with pytest.raises(StudyConfigError, match="1 taught children have no teacher .*scratch\\+taught N40 s1"):
        run_study(load_study_config(raw=two), uri)
    assert not (tmp / "two" / "children").exists()


def test_a_teacher_of_other_labels_is_refused(taught_study):
    from molpre.data.datasets import load_labeled
    from molpre.data.splits import SplitError
    from molpre.study.teaching import check_same_split
    from molpre.train.finetune import split_data
    from molpre.train.finetune_config import FinetuneConfig

    tmp, raw, uri, teacher, _ = taught_study
    data = load_labeled(raw["data"], raw["target"], raw["unit"])
    other = split_data(FinetuneConfig(data=raw["data"], target=raw["target"], unit=raw["unit"],
                                      budget=40, seed=1, test_first=30), data)
    with pytest.raises((ValueError, SplitError), match="differ from this child's"):
        check_same_split(tmp / "out" / "children" / "scratch-N40-s0", other, data)


def test_a_resumed_taught_study_reads_its_taught_child_back_at_its_budget(taught_study):
    """A taught child's finetune logs its label count (true + taught: 50) as ``budget``; the
    study's own tag keeps N (a resumed study once put the child at N = 50)."""
    tmp, raw, uri, _, first = taught_study
    again = run_study(load_study_config(raw=_taught_raw(tmp, raw)), uri, report_only=True)
    assert again.ran == 0
    assert sorted((r["arm"], r["budget"]) for r in again.records) == \
        sorted((r["arm"], r["budget"]) for r in first.records)
    assert set(again.summary["table"]["scratch+taught"]) == {"40"}


def test_a_resumed_taught_study_needs_no_teacher_for_its_finished_children(taught_study):
    """Only children still to run need their teacher: a finished taught study resumes (and
    runs nothing) after its teaching study is gone, here pointed at an empty folder."""
    tmp, raw, uri, _, first = taught_study
    gone = tmp / "teacher_gone"
    gone.mkdir()
    again = run_study(load_study_config(raw=_taught_raw(tmp, raw, teach={"study": str(gone)})), uri)
    assert again.ran == 0 and again.parent_run_id == first.parent_run_id
    assert "scratch+taught" in again.summary["table"]


def test_a_delta_study_teaches_its_own_delta_arm_with_the_scale_of_its_true_labels(delta_study):
    """A delta study's taught arm learns the delta too. Its ``s`` must be its true labels'
    (the untaught child's), and the errors the study recorded (raw output against the delta
    data) must be those of its saved model with the cheap level added back (teacher_labels's
    independent path): a scale fitted on the teacher's labels as well once made them differ."""
    from pathlib import Path

    tmp, raw, uri, teacher = delta_study
    taught = {**raw, "name": "delta-taught", "out": str(tmp / "delta-taught"),
              "baselines": [], "teach": {"study": raw["out"]}}
    result = run_study(load_study_config(raw=taught), uri)
    by_arm = {r["arm"]: r for r in result.records}
    assert set(by_arm) == {"scratch", "scratch+taught"}
    assert by_arm["scratch+taught"]["delta_scale"] == pytest.approx(
        by_arm["scratch"]["delta_scale"], abs=1e-12)
    from molpre.delta import Delta
    from molpre.models.checkpoint import load_checkpoint

    def saved(child: str) -> Delta:
        _, payload = load_checkpoint(Path(result.out) / "children" / child / "model.ckpt")
        return Delta.from_meta(payload["meta"]["delta"])

    assert saved("scratch+taught-N40-s0") == saved("scratch-N40-s0")
    _assert_recorded_errors_are_the_saved_models(
        Path(result.out) / "children" / "scratch+taught-N40-s0", raw, result.summary["delta"]["data"])


def _assert_recorded_errors_are_the_saved_models(folder, raw, delta_data) -> None:
    """The errors a study recorded for the child in ``folder`` (its raw output against the
    delta data) equal its saved model's predictions with the cheap level added back
    (teacher_labels's independent path), on the child's own test molecules."""
    from molpre.data.datasets import load_labeled
    from molpre.study.teaching import teacher_labels

    data = load_labeled(raw["data"], raw["target"], raw["unit"])
    split = pd.read_csv(folder / "split.csv")
    test_ids = set(split.mol_id[split.part == "test"])
    rows = np.array([i for i, m in enumerate(data.mol_ids) if m in test_ids])
    labels = teacher_labels(folder, data, rows, "energy", list(delta_data))
    recorded = np.load(folder / "test_errors.npy")
    assert np.allclose(np.abs(labels - data.energy[rows]), recorded, atol=1e-5)


# -- teach.extra (molpre.study.teach_extra): the teacher also labels molecules beyond the
# study's data; the extra file holds 15 new QM9 molecules, a study molecule at another
# geometry (the audit drops it) and a repeat of one new molecule (dropped as a repeat).


def _extra_file(tmp):
    frames = ase.io.read(QM9, index="80:95", format="extxyz")
    inside = ase.io.read(QM9, index="0", format="extxyz")
    inside.positions += 0.01  # the same molecule as the study's row 0, moved a little
    inside.info["mol_id"] = "copy_of_row0"
    again = frames[3].copy()
    again.info["mol_id"] = "repeat_of_83"
    ase.io.write(tmp / "extra.extxyz", [*frames, inside, again], format="extxyz")
    return frames


@pytest.fixture(scope="module")
def extra_study(taught_study):
    tmp, raw, uri, teacher, plain = taught_study
    new = _extra_file(tmp)
    config = _taught_raw(tmp, raw, name="extra", out=str(tmp / "extra"),
                         teach={"study": str(plain.out), "arms": ["scratch"],
                                "extra": str(tmp / "extra.extxyz")})
    return tmp, raw, new, run_study(load_study_config(raw=config), uri), uri


def test_the_teacher_labels_audited_extra_molecules_for_the_student(extra_study):
    import json

    import mlflow

    from molpre.study.contamination import eval_keys

    tmp, raw, new, result, uri = extra_study
    counts = json.loads((result.out / "teach-extra.json").read_text())
    assert {k: counts[k] for k in ("given", "in_study", "repeated", "unreadable", "used")} == \
        {"given": 17, "in_study": 1, "repeated": 1, "unreadable": 0, "used": 15}
    own = pd.read_csv(result.out / "children" / "scratch-N40-s0" / "split.csv")
    taught = pd.read_csv(result.out / "children" / "scratch+taught-N40-s0" / "taught_split.csv")
    extra_ids = {m for m in taught.mol_id if m.startswith("extra:")}
    assert extra_ids == {"extra:" + a.info["mol_id"] for a in new}
    assert set(taught.mol_id[taught.part == "train"]) >= extra_ids
    for part in ("val", "test"):  # validated and scored on the study's own molecules only
        assert set(taught.mol_id[taught.part == part]) == set(own.mol_id[own.part == part])
    study = {k.block for k in eval_keys(ase.io.read(raw["data"], index=":"))}
    kept = ase.io.read(result.out / "teach-extra.extxyz", index=":")
    assert not {k.block for k in eval_keys(kept)} & study
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run({r["arm"]: r for r in result.records}["scratch+taught"]["run_id"])
    assert run.data.tags["taught.extra"] == "15" and run.data.tags["taught.n"] == "25"
    assert np.isfinite({r["arm"]: r for r in result.records}["scratch+taught"]["test_mae"])
    assert result.summary["teach_extra"]["used"] == 15
    assert "15 used of 17 given; dropped as a study molecule (InChIKey block) 1" in \
        (result.out / "report.md").read_text()


def test_a_delta_teachers_cheap_level_is_computed_for_the_extra_molecules(tmp_path):
    """The extra molecules get the teacher's cheap level (here MMFF94, computed by RDKit
    through the same path as the study's store), matched to them by their ``extra:`` ids."""
    from molpre.data.datasets import load_labeled
    from molpre.delta import cheap_labels
    from molpre.study.teach_extra import extra_data, prepare_extra

    frames = ase.io.read(QM9, index=":6", format="extxyz")
    ase.io.write(tmp_path / "data.extxyz", frames, format="extxyz")
    ase.io.write(tmp_path / "more.extxyz", ase.io.read(QM9, index="6:9", format="extxyz"),
                 format="extxyz")
    data = load_labeled(tmp_path / "data.extxyz", "u0_atom", "kcal/mol")
    store = tmp_path / "study-mmff.db"
    cheap_labels(data, "mmff94", cache=str(store))
    prepared = prepare_extra(str(tmp_path / "more.extxyz"), 2, data, tmp_path, [str(store)], 1)
    assert prepared["extra_audit"]["used"] == 2 and len(prepared["extra_delta_data"]) == 1
    extra = extra_data(prepared["extra"], data)
    assert extra.mol_ids == ["extra:" + a.info["mol_id"] for a in ase.io.read(QM9, index="6:8")]
    assert np.all(np.isnan(extra.labels["energy"]))
    read_back = cheap_labels(extra, prepared["extra_delta_data"])
    direct = cheap_labels(extra, "mmff94", cache=str(tmp_path / "direct.db"))
    assert read_back.level == "mmff94"
    assert np.allclose(read_back.energies, direct.energies, atol=1e-9)


def test_extra_molecules_need_a_teaching_study_and_a_positive_count():
    from molpre.study.config import StudyConfig, TeachSpec

    with pytest.raises(ValueError, match="with extra"):
        StudyConfig(teach=TeachSpec(extra="more.extxyz"))
    with pytest.raises(ValueError, match="extra_max"):
        StudyConfig(teach=TeachSpec(study="t", extra="more.extxyz", extra_max=0))
    with pytest.raises(ValueError, match="give teach.extra"):
        StudyConfig(teach=TeachSpec(study="t", extra_max=5))


def test_a_parent_taught_with_extra_molecules_refuses_other_teaching(extra_study, taught_study):
    """Resuming with other extra molecules (or none) would report children taught two ways
    side by side: refused before anything runs; a parent taught on the pool only refuses
    extra molecules the same way."""
    tmp, raw, _, result, uri = extra_study
    plain = taught_study[4]
    same = {"study": str(plain.out), "arms": ["scratch"]}
    for teach in ({**same}, {**same, "extra": str(tmp / "extra.extxyz"), "extra_max": 3}):
        config = _taught_raw(tmp, raw, name="extra", out=str(result.out), teach=teach)
        with pytest.raises(StudyConfigError, match="taught with extra=.*extra.extxyz"):
            run_study(load_study_config(raw=config), uri, report_only=True)
    pool_only = _taught_raw(tmp, raw, teach={"study": raw["out"], "extra": str(tmp / "extra.extxyz")})
    with pytest.raises(StudyConfigError, match="taught with extra=None"):
        run_study(load_study_config(raw=pool_only), uri)


def test_only_the_taught_arms_run_when_the_untaught_ones_are_measured_elsewhere(tmp_path):
    from molpre.study.config import SeedSpec, StudyConfig, TeachSpec
    from molpre.study.plan import plan

    config = StudyConfig(budgets=[40], seeds=SeedSpec(small=2, large=2), baselines=["linear"],
                         teach=TeachSpec(study="t", arms=["scratch"], untaught=False))
    assert sorted({c.arm for c in plan(config)}) == ["linear", "scratch+taught"]
    both = dataclasses.replace(config, teach=TeachSpec(study="t", arms=["scratch"]))
    assert sorted({c.arm for c in plan(both)}) == ["linear", "scratch", "scratch+taught"]


def test_an_unreadable_or_empty_extra_file_is_refused_with_its_reason(tmp_path):
    from molpre.data.datasets import DatasetError, load_labeled
    from molpre.study.teach_extra import prepare_extra

    frames = ase.io.read(QM9, index=":4", format="extxyz")
    ase.io.write(tmp_path / "data.extxyz", frames, format="extxyz")
    data = load_labeled(tmp_path / "data.extxyz", "u0_atom", "kcal/mol")
    with pytest.raises(DatasetError, match="not found"):
        prepare_extra(str(tmp_path / "missing.extxyz"), None, data, tmp_path, [], 1)
    (tmp_path / "junk.extxyz").write_text("not a molecule\n")
    with pytest.raises(DatasetError, match="cannot read"):
        prepare_extra(str(tmp_path / "junk.extxyz"), None, data, tmp_path, [], 1)
    with pytest.raises(ValueError, match="no molecule of .* is left after the audit"):
        prepare_extra(str(tmp_path / "data.extxyz"), None, data, tmp_path, [], 1)
    assert not (tmp_path / "teach-extra.extxyz").exists()


def test_a_delta_study_refuses_extra_molecules_from_a_plain_teacher(extra_study, taught_study):
    """A delta student reads every molecule's cheap level, which the study computes for the
    extra molecules with its teacher's level: a plain teacher has none."""
    tmp, raw, _, _, uri = extra_study
    plain = taught_study[4]
    config = {**raw, "name": "delta-extra", "out": str(tmp / "delta-extra"), "baselines": [],
              "teach": {"study": str(plain.out), "arms": ["scratch"],
                        "extra": str(tmp / "extra.extxyz")}}
    with pytest.raises(StudyConfigError, match="needs a delta teacher"):
        run_study(load_study_config(raw=config), uri)
    assert not (tmp / "delta-extra" / "children").exists()
