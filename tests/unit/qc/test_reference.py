import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.store import open_store, write_row
from molpre.models.atomref import fit_reference_energies, reference_residuals
from molpre.qc.pyscf import QCResult

TRUE = {1: -13.6, 6: -1030.0, 7: -1480.0, 8: -2040.0}


def labeled(names):
    frames = []
    for k, name in enumerate(names):
        atoms = molecule(name)
        energy = sum(TRUE[int(z)] for z in atoms.numbers) + 0.01 * k
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
        frames.append(atoms)
    return frames


NAMES = ["H2O", "CH4", "NH3", "CO2", "C2H6", "HCN", "H2CO", "N2", "CH3OH"]


def test_fit_recovers_per_element_energies():
    fitted = fit_reference_energies(labeled(NAMES))
    assert set(fitted) == set(TRUE)
    for z, value in TRUE.items():
        assert fitted[z] == pytest.approx(value, abs=0.05)
    assert np.abs(reference_residuals(labeled(NAMES), fitted)).max() < 0.1


def test_fit_from_a_store_uses_ok_rows_only(tmp_path):
    db = open_store(tmp_path / "l.db")
    meta = {"method": "HF", "basis": "sto-3g", "level": "x", "pyscf_version": "0"}
    for k, atoms in enumerate(labeled(NAMES)):
        result = QCResult(ok=True, energy=atoms.get_potential_energy(), homo=-1.0, lumo=1.0,
                          dipole=np.zeros(3), converged=True)
        write_row(db, atoms, f"k{k}", result, meta)
    write_row(db, molecule("H2"), "bad", QCResult(ok=False, reason="x"), meta)
    fitted = fit_reference_energies(tmp_path / "l.db")
    assert fitted[8] == pytest.approx(TRUE[8], abs=0.05)
