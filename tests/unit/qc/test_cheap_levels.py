"""Cheap levels: GFN-xTB (tblite) and MMFF94 (RDKit) through the one compute entry point.

tblite is checked against its own reference numbers (the alanine-dipeptide conformer and
values of tblite's test suite, shipped in its wheel) through molpre's Angstrom/eV boundary;
every level's forces against central finite differences of its own energy.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from molpre.qc import compute, compute_many, content_key, parse_level
from molpre.qc.levels import LevelError, LevelOfTheory
from molpre.qc.pyscf import FORCE_FACTOR
from molpre.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV, KCAL_PER_MOL_TO_EV

pytest.importorskip("tblite.interface", reason="tblite is a dependency on Linux x86-64")

CHEAP = ["gfn2-xtb", "gfn1-xtb", "mmff94", "mmff94s"]


@pytest.mark.parametrize("text", [*CHEAP, "hf/sto-3g", "hf/sto-3g/df", "b3lyp/6-31g(2df,p)/df/grid3",
                                  "pbe0/def2-svp/grid4/cart/tol1e-08"])
def test_a_level_string_round_trips_through_its_tag(text):
    level = parse_level(text)
    assert level.tag == text
    assert parse_level(level.tag) == level


def test_engines_and_unknown_levels():
    assert [parse_level(t).engine for t in ("gfn2-xtb", "mmff94", "hf/sto-3g")] == [
        "tblite", "rdkit", "pyscf"]
    with pytest.raises(LevelError, match="gfn2-xtb"):
        parse_level("xtb")
    with pytest.raises(LevelError, match="unknown part"):
        parse_level("hf/sto-3g/fast")


def test_each_level_has_its_own_content_key(water):
    keys = {content_key(water, parse_level(t)) for t in [*CHEAP, "hf/sto-3g"]}
    assert len(keys) == 5
    # limits decide whether a label is made, never its numbers: same key
    assert content_key(water, parse_level("gfn2-xtb", max_atoms=5)) == content_key(
        water, parse_level("gfn2-xtb"))


def test_gfn2_matches_tblites_own_reference_through_the_ev_boundary():
    reference = pytest.importorskip("tblite.test_interface",
                                    reason="tblite's wheel ships its test module")
    numbers, bohr = reference.get_ala("xac")
    atoms = Atoms(numbers=numbers, positions=np.asarray(bohr) * BOHR_TO_ANGSTROM)
    result = compute(atoms, parse_level("gfn2-xtb"), forces=True)
    assert result.ok, result.reason
    # tblite's test: -32.97134042392298 Hartree at accuracy 1 (its default), to 1e-6 Hartree
    assert result.energy == pytest.approx(-32.97134042392298 * HARTREE_TO_EV, abs=3e-5)
    assert result.forces.shape == (len(numbers), 3)
    np.testing.assert_allclose(result.forces.sum(0), 0.0, atol=1e-6)  # no net force


def _finite_difference_forces(atoms, level, h=1e-3):
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            forces[i, k] = -(compute(plus, level).energy - compute(minus, level).energy) / (2 * h)
    return forces


@pytest.mark.parametrize("text,atol", [("gfn2-xtb", 2e-3), ("gfn1-xtb", 2e-3), ("mmff94", 2e-4)])
def test_forces_are_minus_the_gradient_of_the_energy(mol, text, atol):
    atoms = mol("CH3OH")
    atoms.rattle(0.05, seed=1)
    level = parse_level(text)
    result = compute(atoms, level, forces=True)
    assert result.ok, result.reason
    np.testing.assert_allclose(result.forces, _finite_difference_forces(atoms, level), atol=atol)


def test_mmff_energy_is_rdkits_own_in_ev():
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    props = AllChem.MMFFGetMoleculeProperties(mol)
    kcal = AllChem.MMFFGetMoleculeForceField(mol, props, nonBondedThresh=100.0).CalcEnergy()
    atoms = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
                  positions=mol.GetConformer().GetPositions())
    result = compute(atoms, parse_level("mmff94"))
    assert result.ok and result.energy == pytest.approx(kcal * KCAL_PER_MOL_TO_EV, rel=1e-9)


def test_bad_input_is_a_reasoned_row_never_an_exception(mol):
    odd = mol("CH4", spin=1)
    odd.info["charge"] = 1
    overlapping = mol("H2O")
    overlapping.positions[1] = overlapping.positions[0] + 0.1
    for text in CHEAP:
        result = compute(overlapping, parse_level(text))
        assert not result.ok and "overlapping atoms" in result.reason
    result = compute(odd, parse_level("gfn2-xtb"))
    assert not result.ok and "electron count" in result.reason
    big = compute(mol("C6H6"), parse_level("gfn2-xtb", max_atoms=4))
    assert not big.ok and "max_atoms 4" in big.reason


def test_radical_cation_runs_with_its_spin(mol):
    cation = mol("CH4", charge=1, spin=2)
    neutral = compute(mol("CH4"), parse_level("gfn2-xtb"))
    ion = compute(cation, parse_level("gfn2-xtb"))
    assert ion.ok and neutral.ok
    assert 8.0 < ion.energy - neutral.energy < 20.0  # an ionisation energy, eV


def test_compute_many_keeps_order_and_pins_threads(mol):
    frames = [mol(name) for name in ("H2O", "NH3", "CH4")]
    many = compute_many(frames, parse_level("gfn2-xtb"), forces=True)
    single = [compute(a, parse_level("gfn2-xtb"), forces=True) for a in frames]
    assert [r.energy for r in many] == pytest.approx([r.energy for r in single], abs=1e-9)
    assert FORCE_FACTOR > 0 and isinstance(parse_level("gfn2-xtb"), LevelOfTheory)
