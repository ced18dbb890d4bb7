"""The ASE-db label store: rows, the dedupe guard, reading back, extxyz export, URLs."""

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from molpre.data.store import export_extxyz, open_store, read_labels, stored_keys, write_row
from molpre.qc.pyscf import QCResult

META = {"method": "HF", "basis": "sto-3g", "level": "hf/sto-3g/df", "pyscf_version": "2.14.0"}


def conformer(name="H2O", **info):
    atoms = molecule(name)
    atoms.info.update({"mol_id": name, "conf_id": 3, "smiles": "O", "inchikey": "XLYO",
                       "charge": 0, "spin": 1, **info})
    return atoms


def ok_result(n_atoms):
    return QCResult(ok=True, energy=-2039.5, forces=np.arange(3.0 * n_atoms).reshape(-1, 3),
                    homo=-10.6, lumo=16.2, dipole=np.array([0.0, 0.0, 1.7]), converged=True,
                    scf_cycles=5, wall_s=0.25, ladder=["diis"])


def test_ok_and_failed_rows_follow_the_schema(tmp_path):
    db = open_store(tmp_path / "l.db")
    water, ion = conformer(), conformer("OH", charge=-1)
    assert write_row(db, water, "k1", ok_result(3), META) == 1
    write_row(db, ion, "k2", QCResult(ok=False, reason="bad", ladder=["diis"]), META)
    ok, failed = db.get(key="k1"), db.get(key="k2")
    assert ok.energy == -2039.5 and ok.forces.shape == (3, 3) and ok.status == "ok"
    assert ok.dipole_debye == pytest.approx(1.7) and ok.homo == -10.6 and ok.converged
    for name in ("mol_id", "conf_id", "smiles", "inchikey", "spin", "method", "basis", "level",
                 "pyscf_version", "reason", "scf_cycles", "wall_s"):
        assert name in ok.key_value_pairs
    assert failed.status == "failed" and failed.reason == "bad" and failed.get("energy") is None
    assert failed.mol_charge == -1 and failed.charge == pytest.approx(-1)
    assert stored_keys(db) == {"k1": "ok", "k2": "failed"}


def test_duplicate_key_is_not_written_twice_unless_replacing(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", QCResult(ok=False, reason="slow"), META)
    assert write_row(db, conformer(), "k1", ok_result(3), META) is None
    assert db.count() == 1 and db.get(key="k1").status == "failed"
    write_row(db, conformer(), "k1", ok_result(3), META, replace=True)
    assert db.count() == 1 and db.get(key="k1").status == "ok"


def test_read_labels_gives_calculator_results_and_info(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer("OH", charge=-1), "k1", ok_result(2), META)
    write_row(db, conformer(), "k2", QCResult(ok=False, reason="bad"), META)
    (atoms,) = read_labels(tmp_path / "l.db")
    assert atoms.get_potential_energy() == -2039.5 and atoms.get_forces().shape == (2, 3)
    assert atoms.info["charge"] == -1 and atoms.info["mol_id"] == "OH"
    assert not atoms.get_initial_charges().any()
    assert len(read_labels(tmp_path / "l.db", include_failed=True)) == 2


def test_export_extxyz_round_trips_through_ase(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", ok_result(3), META)
    write_row(db, conformer("CH4"), "k2", QCResult(ok=False, reason="odd electrons"), META)
    assert export_extxyz(tmp_path / "l.db", tmp_path / "l.extxyz") == 1
    (atoms,) = ase.io.read(tmp_path / "l.extxyz", index=":")
    assert atoms.get_potential_energy() == -2039.5
    np.testing.assert_allclose(atoms.get_forces(), ok_result(3).forces)
    assert atoms.info["smiles"] == "O" and atoms.info["conf_id"] == 3
    export_extxyz(tmp_path / "l.db", tmp_path / "all.extxyz", include_failed=True)
    frames = ase.io.read(tmp_path / "all.extxyz", index=":")
    assert frames[1].info["reason"] == "odd electrons" and frames[1].calc is None


def test_postgresql_url_is_passed_to_ase_db():
    url = "postgresql://user:secret@db.example:5432/labels"
    try:
        db = open_store(url)
    except RuntimeError as err:  # ase's PostgreSQL backend is a separate package
        assert url in str(err) and "ase_db_backends" in str(err)
    else:
        assert type(db).__name__ == "PostgreSQLDatabase"


def test_number_like_strings_survive_exactly(tmp_path):
    db = open_store(tmp_path / "l.db")
    atoms = conformer(mol_id="007", smiles="True", inchikey="nan")
    write_row(db, atoms, "k1", ok_result(3), META)
    row = db.get(key="k1")
    assert row.mol_id == 7  # ase.db keeps number-like strings only as numbers
    (back,) = read_labels(tmp_path / "l.db")
    assert (back.info["mol_id"], back.info["smiles"], back.info["inchikey"]) == ("007", "True", "nan")
