"""compute() against direct PySCF calls, finite differences and bad input."""

import numpy as np
import pytest
from ase import Atoms
from hf_level import hf
from pyscf import dft, gto, scf

from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import compute
from molpre.units import HARTREE_TO_EV


def direct_energy(atoms, level, spin=0):
    """The same calculation written directly against PySCF (Hartree)."""
    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions,
                                            strict=True)],
                unit="Angstrom", basis=level.basis, spin=spin, cart=level.cart, verbose=0)
    if level.is_hf:
        mf = scf.RHF(mol) if spin == 0 else scf.UHF(mol)
    else:
        mf = (dft.RKS(mol) if spin == 0 else dft.UKS(mol))
        mf.xc, mf.grids.level = level.method, level.grid_level
    if level.density_fit:
        mf = mf.density_fit()
    mf.conv_tol = level.conv_tol
    energy = mf.kernel()
    assert mf.converged
    return energy


@pytest.mark.parametrize("name", ["H2", "H2O", "CH4"])
@pytest.mark.parametrize("level", [LevelOfTheory("HF", "sto-3g", conv_tol=1e-11),
                                   LevelOfTheory("HF", "6-31g", density_fit=False,
                                                 conv_tol=1e-11)],
                         ids=["hf-sto3g-df", "hf-631g"])
def test_energy_equals_direct_pyscf(name, level, mol):
    atoms = mol(name)
    result = compute(atoms, level)
    assert result.ok and result.converged and result.ladder == ["diis"]
    assert abs(result.energy / HARTREE_TO_EV - direct_energy(atoms, level)) < 1e-8
    assert result.homo < result.lumo and result.scf_cycles > 0 and result.wall_s > 0


def test_dft_and_open_shell_energy_equal_direct_pyscf(mol):
    level = LevelOfTheory("b3lyp", "6-31g", grid_level=2, conv_tol=1e-11)
    water = mol("H2O")
    assert abs(compute(water, level).energy / HARTREE_TO_EV - direct_energy(water, level)) < 1e-8
    methyl = mol("CH3", spin=2)
    result = compute(methyl, hf(conv_tol=1e-11))
    expected = direct_energy(methyl, hf(conv_tol=1e-11), spin=1)
    assert result.ok and abs(result.energy / HARTREE_TO_EV - expected) < 1e-8


def finite_difference_forces(atoms, level, step=1e-3):
    """-dE/dx by central differences of compute() energies, eV/Angstrom."""
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, k] += sign * step
                energies.append(compute(moved, level).energy)
            forces[i, k] = -(energies[0] - energies[1]) / (2 * step)
    return forces


@pytest.mark.parametrize("name", ["H2O", "CH4"])
def test_forces_match_finite_differences(name, mol):
    atoms = mol(name)
    atoms.rattle(0.05, seed=1)  # off equilibrium, so forces are not ~0
    level = LevelOfTheory("HF", "sto-3g", conv_tol=1e-12)
    result = compute(atoms, level, forces=True)
    assert result.forces.shape == (len(atoms), 3)
    assert np.abs(result.forces).max() > 0.05
    np.testing.assert_allclose(result.forces, finite_difference_forces(atoms, level), atol=2e-4)


def test_dipole_points_along_water_axis(water):
    result = compute(water, hf())
    assert result.dipole.shape == (3,)
    assert abs(result.dipole[2]) > 1.0 and np.allclose(result.dipole[:2], 0, atol=1e-6)


def bad_input(mol) -> dict:
    """Reason prefix -> a conformer that must fail with it (at 6-31G, max_atoms 4)."""
    return {
        "overlapping atoms": Atoms("OH2", positions=[[0, 0, 0], [0, 0, 0.1], [0.9, 0, 0]]),
        "odd electron count (9) with spin multiplicity 1": mol("CH3"),
        "element(s) Au missing from basis '6-31g'": Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]]),
        "too many atoms: 5 > max_atoms 4": mol("CH4"),
    }


BAD_REASONS = ["overlapping atoms", "odd electron count (9) with spin multiplicity 1",
               "element(s) Au missing from basis '6-31g'", "too many atoms: 5 > max_atoms 4"]


@pytest.mark.parametrize("reason", BAD_REASONS)
def test_bad_input_gives_error_with_reason(reason, mol):
    level = hf(basis="6-31g", max_atoms=4)
    result = compute(bad_input(mol)[reason], level)
    assert not result.ok and result.energy is None
    assert result.reason.startswith(reason)


def test_impossible_multiplicity_is_an_error(mol):
    assert "impossible" in compute(mol("H2", spin=4), hf()).reason


def test_max_cycle_one_is_not_converged_and_has_no_label(water):
    result = compute(water, hf(max_cycle=1), forces=True)
    assert not result.ok and not result.converged
    assert result.energy is None and result.forces is None
    assert result.ladder == ["diis", "damp+shift", "newton"]
    assert result.reason.startswith("SCF not converged after diis>damp+shift>newton")


def test_time_limit_inside_scf_is_an_error(water):
    result = compute(water, LevelOfTheory("b3lyp", "6-31g", time_limit_s=1e-3))
    assert not result.ok and result.reason.startswith("time limit exceeded")


def test_pyscf_errors_become_reasons(water):
    result = compute(water, LevelOfTheory("notafunctional"))
    assert not result.ok and result.reason.startswith("pyscf error:")


@pytest.mark.parametrize("max_cycle, ladder", [(4, ["diis", "damp+shift"]),
                                               (2, ["diis", "damp+shift", "newton"])])
def test_ladder_rescues_a_short_diis_and_gives_the_same_energy(water, max_cycle, ladder):
    reference = compute(water, hf())
    rescued = compute(water, hf(max_cycle=max_cycle))
    assert rescued.ok and rescued.converged and rescued.ladder == ladder
    assert abs(rescued.energy - reference.energy) / HARTREE_TO_EV < 1e-8
