import gzip

import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import DatasetError, labeled_from_atoms, load_labeled
from molpre.runtime import file_sha256
from molpre.units import HARTREE_TO_EV, KCAL_PER_MOL_TO_EV


def _labeled(name, energy, mol_id, conf_id=0):
    atoms = molecule(name)
    forces = np.full((len(atoms), 3), 0.5)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info.update(mol_id=mol_id, conf_id=conf_id, inchikey=f"KEY-{name}", gap=0.25)
    return atoms


@pytest.fixture()
def label_db(tmp_path):
    path = tmp_path / "labels.db"
    with ase.db.connect(str(path)) as db:
        for i, (name, e) in enumerate([("H2O", -2000.0), ("CH4", -1100.0), ("NH3", -1500.0)]):
            a = _labeled(name, e, f"m{i}")
            db.write(a, mol_id=f"m{i}", conf_id=0, inchikey=f"KEY-{name}", status="ok",
                     reason="", method="hf", basis="sto-3g", level="hf/sto-3g", charge=0, spin=1)
        failed = molecule("CO")
        db.write(failed, mol_id="m9", conf_id=0, inchikey="KEY-CO", status="failed",
                 reason="SCF did not converge", charge=0, spin=1)
    return path


def test_db_reads_only_ok_rows_with_energy_forces_and_hash(label_db):
    data = load_labeled(label_db, target="energy", forces=True)
    assert len(data) == 3
    assert data.mol_ids == ["m0", "m1", "m2"]
    assert data.groups == ["KEY-H2O", "KEY-CH4", "KEY-NH3"]
    np.testing.assert_allclose(data.energy, [-2000.0, -1100.0, -1500.0])
    assert data.forces[0].shape == (3, 3)
    assert data.sha256 == file_sha256(label_db)


def test_extxyz_info_target_is_converted_to_ev(tmp_path):
    frames = [_labeled("H2O", -1.0, "a"), _labeled("CH4", -2.0, "b")]
    frames[0].info["u0"] = -76.0
    frames[1].info["u0"] = -40.0
    path = tmp_path / "set.extxyz"
    ase.io.write(path, frames, format="extxyz")
    data = load_labeled(path, target="u0", unit="hartree")
    np.testing.assert_allclose(data.energy, np.array([-76.0, -40.0]) * HARTREE_TO_EV)
    assert data.forces is None
    energy = load_labeled(path, target="energy")
    np.testing.assert_allclose(energy.energy, [-1.0, -2.0])


def test_rows_without_target_are_skipped_and_counted():
    a, b = _labeled("H2O", -1.0, "a"), _labeled("CH4", -2.0, "b")
    a.info["homo"] = -5.0
    data = labeled_from_atoms([a, b], target="homo")
    assert len(data) == 1 and data.n_skipped == 1
    np.testing.assert_allclose(data.labels["homo"], [-5.0])  # molpre convention: eV
    assert len(data.sha256) == 64


def test_bad_files_and_targets_give_clear_errors(tmp_path, label_db):
    with pytest.raises(DatasetError, match="not found"):
        load_labeled(tmp_path / "missing.db")
    with pytest.raises(DatasetError, match="unknown target 'no_such_key'"):
        load_labeled(label_db, target="no_such_key")
    with pytest.raises(ValueError, match="unknown energy unit"):
        load_labeled(label_db, unit="furlongs")
    with pytest.raises(DatasetError, match="no conformer .* 'homo'"):
        load_labeled(label_db, target="homo")
    bad = _labeled("H2O", -1.0, "a")
    bad.info["homo"] = "low"
    with pytest.raises(DatasetError, match="'homo' is not numeric"):
        labeled_from_atoms([bad], target="homo")


def test_qm9_sample_u0_atom_in_kcal(shared_data):
    path = shared_data / "qm9_sample3000.extxyz.gz"
    data = load_labeled(path, target="u0_atom", unit="kcal/mol")
    assert len(data) == 3000
    with gzip.open(path, "rt") as handle:  # the first frame's comment line
        handle.readline()
        comment = handle.readline()
    u0_atom = float(comment.split("u0_atom=")[1].split()[0])
    assert data.energy[0] == pytest.approx(u0_atom * KCAL_PER_MOL_TO_EV)
    assert data.mol_ids[0] == "gdb_1"
