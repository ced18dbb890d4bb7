"""Conformers: seeded ETKDGv3 + MMFF94/UFF, eV energies, given geometries, loud failures."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers

from molpre.chem import (
    ConformerError,
    IntakeConfig,
    embed_conformers,
    read_molecules,
    record_from_smiles,
)
from molpre.units import KCAL_PER_MOL_TO_EV

CONTRACT_KEYS = {"mol_id", "conf_id", "smiles", "inchikey", "charge", "spin", "ff_energy", "ff"}


def _positions(frames):
    return [f.positions.copy() for f in frames]


def test_same_seed_same_conformers_other_seed_differs():
    rec = record_from_smiles("CCCCOC(=O)c1ccccc1", "ester")
    first, again = embed_conformers(rec, n=3, seed=11), embed_conformers(rec, n=3, seed=11)
    other = embed_conformers(rec, n=3, seed=12)
    assert len(first) == len(again) >= 2
    for a, b in zip(_positions(first), _positions(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0].positions, other[0].positions)


def test_seed_zero_still_gives_distinct_conformers():
    # RDKit's own randomSeed=0 embeds identical copies, which pruning collapses to one.
    frames = embed_conformers(record_from_smiles("CCCCCCCCO", "octanol"), n=4, seed=0)
    assert len(frames) >= 3


def test_frames_carry_the_contract_info_and_hydrogens():
    rec = record_from_smiles("C[NH3+]", "methylammonium")
    (frame,) = embed_conformers(rec, n=1, seed=0)
    assert CONTRACT_KEYS <= set(frame.info)
    assert frame.get_chemical_formula() == "CH6N"
    assert (frame.info["mol_id"], frame.info["conf_id"], frame.info["charge"]) == (
        "methylammonium", 0, 1)
    assert frame.info["spin"] == 1 and frame.info["ff"] == "MMFF94"
    assert frame.info["smiles"] == rec.smiles and frame.info["inchikey"] == rec.inchikey


def test_ff_energy_is_the_mmff94_energy_in_ev():
    rec = record_from_smiles("CC(=O)Nc1ccc(O)cc1", "paracetamol")
    frame = embed_conformers(rec, n=1, seed=3)[0]
    mol = Chem.AddHs(rec.mol)
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, xyz in enumerate(frame.positions):
        conf.SetAtomPosition(i, xyz.tolist())
    mol.AddConformer(conf, assignId=True)
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol, mmffVariant="MMFF94")
    kcal = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props).CalcEnergy()
    assert frame.info["ff_energy"] == pytest.approx(kcal * KCAL_PER_MOL_TO_EV, rel=1e-6)
    assert frame.info["ff_converged"]


def test_uff_fallback_is_recorded():
    config = IntakeConfig(elements=("H", "C", "Se"))
    rec = record_from_smiles("C[Se]C", "dimethylselenide", config=config)
    frames = embed_conformers(rec, n=1, seed=0)
    assert frames[0].info["ff"] == "UFF"


def test_rms_pruning_keeps_rigid_molecules_to_one_conformer():
    frames = embed_conformers(record_from_smiles("c1ccccc1", "benzene"), n=5, seed=0)
    assert len(frames) == 1


def test_error_record_raises_with_its_reason():
    with pytest.raises(ConformerError, match="unsupported element"):
        embed_conformers(record_from_smiles("Cl[Pt]Cl", "pt"))
    with pytest.raises(ValueError, match="n must be >= 1"):
        embed_conformers(record_from_smiles("C", "m"), n=0)


def test_given_xyz_geometry_is_conformer_zero(tmp_path):
    path = tmp_path / "w.xyz"
    path.write_text("3\n\nO 0.0 0.0 0.1173\nH 0.0 0.7572 -0.4692\nH 0.0 -0.7572 -0.4692\n")
    (rec,) = read_molecules(path)
    frames = embed_conformers(rec, n=2, seed=0)
    assert [f.info["source"] for f in frames] == ["input", "etkdg"]
    np.testing.assert_allclose(frames[0].positions, [[0, 0, 0.1173], [0, 0.7572, -0.4692],
                                                     [0, -0.7572, -0.4692]], atol=1e-6)
    assert np.isfinite(frames[0].info["ff_energy"])
    assert [f.info["conf_id"] for f in frames] == [0, 1]
    assert len(embed_conformers(rec, n=1, seed=0)) == 1
