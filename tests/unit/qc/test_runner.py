"""The label job with real worker processes and a real SQLite store."""

import time

import numpy as np
import pytest
from ase import Atoms
from hf_level import hf

from molpre.data.store import open_store, read_labels
from molpre.qc.levels import LevelError, LevelOfTheory
from molpre.qc.pyscf import compute
from molpre.qc.runner import check_threads, label_conformers

LEVEL = LevelOfTheory("HF", "sto-3g", max_atoms=4)


@pytest.fixture()
def frames(mol):
    """Two good molecules, a duplicate, and one of each kind of bad input."""
    return [
        mol("H2", conf_id=0), mol("H2O", conf_id=0), mol("H2O", mol_id="dup", conf_id=1),
        mol("CH3"), mol("CH4"),
        Atoms("OH2", positions=[[0, 0, 0], [0, 0, 0.1], [0.9, 0, 0]], info={"mol_id": "ovl"}),
        Atoms("U", info={"mol_id": "U", "spin": 1}),
    ]


def test_rows_resume_and_reasons(frames, tmp_path):
    db_path = tmp_path / "labels.db"
    first = label_conformers(frames, db_path, LEVEL, forces=True, workers=2, threads=1)
    assert (first.ok, first.failed, first.duplicates, first.skipped) == (2, 4, 1, 0)
    rows = list(open_store(db_path).select())
    assert len(rows) == 6 and len({r.key for r in rows}) == 6
    reasons = {r.mol_id: r.reason for r in rows if r.status == "failed"}
    assert reasons["CH3"].startswith("odd electron count")
    assert reasons["CH4"].startswith("too many atoms")
    assert reasons["ovl"].startswith("overlapping atoms")
    assert reasons["U"].startswith("element(s) U missing")
    second = label_conformers(frames, db_path, LEVEL, forces=True)
    assert (second.ok, second.failed, second.skipped, second.duplicates) == (0, 0, 7, 0)
    assert open_store(db_path).count() == 6


def test_labels_equal_compute_and_carry_forces(frames, tmp_path):
    label_conformers(frames[:2], tmp_path / "l.db", LEVEL, forces=True)
    labels = read_labels(tmp_path / "l.db")
    for atoms, frame in zip(labels, frames[:2], strict=True):
        direct = compute(frame, LEVEL, forces=True)
        assert atoms.get_potential_energy() == pytest.approx(direct.energy, abs=1e-9)
        np.testing.assert_allclose(atoms.get_forces(), direct.forces, atol=1e-7)
        assert atoms.info["level"] == "hf/sto-3g/df" and atoms.info["status"] == "ok"


def test_retry_failed_replaces_rows(mol, tmp_path):
    db_path = tmp_path / "l.db"
    water = [mol("H2O")]
    failed = label_conformers(water, db_path, hf(max_cycle=1))
    assert failed.failed == 1
    (row,) = open_store(db_path).select()
    assert row.status == "failed" and row.get("energy") is None
    assert row.reason.startswith("SCF not converged")
    assert label_conformers(water, db_path, hf()).skipped == 1  # default: skip
    retried = label_conformers(water, db_path, hf(), retry_failed=True)
    assert retried.ok == 1
    (row,) = open_store(db_path).select()
    assert row.status == "ok" and row.energy < 0


def test_a_store_labeled_without_forces_gets_them_when_a_run_asks(mol, tmp_path):
    """An energies-only row does not answer a forces run: it is recomputed in place (one
    row per conformer, the same energy), and a forces row answers an energies run."""
    db_path = tmp_path / "l.db"
    h2 = [mol("H2")]
    assert label_conformers(h2, db_path, LEVEL).ok == 1
    (row,) = open_store(db_path).select()
    assert row.get("forces") is None
    upgraded = label_conformers(h2, db_path, LEVEL, forces=True)
    assert (upgraded.ok, upgraded.skipped) == (1, 0)
    (new,) = open_store(db_path).select()
    assert new.forces.shape == (2, 3) and new.energy == pytest.approx(row.energy, abs=1e-9)
    assert label_conformers(h2, db_path, LEVEL).skipped == 1
    assert label_conformers(h2, db_path, LEVEL, forces=True).skipped == 1


def test_time_limit_kills_worker_and_run_goes_on(mol, tmp_path):
    # benzene without density fitting takes ~90 s here; H2 ~1 s (in a freshly started worker)
    level = LevelOfTheory("b3lyp", "6-31g*", density_fit=False, time_limit_s=5.0)
    benzene = mol("C6H6")
    summary = label_conformers([benzene, mol("H2")], tmp_path / "l.db", level, forces=True,
                               kill_grace_s=0.0)
    assert (summary.ok, summary.failed) == (1, 1)
    rows = {r.mol_id: r for r in open_store(tmp_path / "l.db").select()}
    assert rows["C6H6"].reason.startswith("time limit exceeded (5 s")
    assert rows["H2"].status == "ok"


def test_a_conformer_stuck_outside_the_scf_is_killed_and_every_row_is_stored_once(
        mol, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLPRE_WORKFLOW_HANG_IDS", "stuck")
    level = LevelOfTheory("HF", "sto-3g", time_limit_s=2.0)
    frames = [mol("H2"), mol("H2O", mol_id="stuck"), mol("H2O", conf_id=0), mol("NH3")]
    start = time.monotonic()
    summary = label_conformers(frames, tmp_path / "l.db", level, workers=2, kill_grace_s=1.0)
    assert time.monotonic() - start < 120  # the stuck one sleeps for an hour
    assert (summary.ok, summary.failed, summary.duplicates) == (2, 1, 1)
    rows = list(open_store(tmp_path / "l.db").select())
    assert len(rows) == 3 and len({r.key for r in rows}) == 3
    (failed,) = [r for r in rows if r.status == "failed"]
    assert failed.reason.startswith("time limit exceeded (2 s; worker killed after")


def test_an_unknown_basis_stops_the_run(mol, tmp_path):
    with pytest.raises(LevelError, match="unknown basis"):
        label_conformers([mol("H2")], tmp_path / "l.db", LevelOfTheory("HF", "nosuchbasis"))


def test_thread_budget_is_checked():
    with pytest.raises(ValueError, match="cores"):
        check_threads(64, 64)
    check_threads(64, 64, oversubscribe=True)
    with pytest.raises(ValueError):
        label_conformers([], "unused.db", LEVEL, workers=0)
