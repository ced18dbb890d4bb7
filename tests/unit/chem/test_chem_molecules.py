"""Standardization, keys and the bad-input kinds that are decided per molecule (real RDKit)."""

from __future__ import annotations

import pytest

from molpre.chem import (
    IntakeConfig,
    MoleculeRecord,
    record_from_mol,
    record_from_smiles,
    records_from_smiles,
)


def test_keys_for_ethanol():
    rec = record_from_smiles("OCC", "eth")
    assert rec.ok and rec.error is None
    assert (rec.smiles, rec.formula, rec.charge, rec.spin) == ("CCO", "C2H6O", 0, 1)
    assert rec.inchikey == "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"
    assert rec.mol.GetNumAtoms() == 3  # stored as a graph without explicit hydrogens


def test_stereo_survives_into_smiles_and_inchikey():
    cis, trans = record_from_smiles(r"C/C=C\C", "a"), record_from_smiles("C/C=C/C", "b")
    assert cis.smiles == r"C/C=C\C" and trans.smiles == "C/C=C/C"
    assert cis.inchikey != trans.inchikey
    assert not cis.inchikey.endswith("UHFFFAOYSA-N")  # the stereo layer is present


@pytest.mark.parametrize(("smiles", "reason"), [
    ("", "empty SMILES"),
    ("   ", "empty SMILES"),
    ("C1CC", "invalid SMILES"),
    ("not a smiles", "invalid SMILES"),
    ("C(C)(C)(C)(C)C", "sanitization failed"),  # pentavalent carbon
    ("Cl[Pt]Cl", "unsupported element(s): Pt"),
    ("C[Si](C)(C)C", "unsupported element(s): Si"),
    ("[CH3]", "radical"),
    ("C" * 300, "too large: 300 heavy atoms"),
])
def test_bad_smiles_become_error_records_with_reason(smiles, reason):
    rec = record_from_smiles(smiles, "x", row=7)
    assert not rec.ok and rec.mol is None
    assert reason in rec.error
    assert (rec.row, rec.input, rec.mol_id) == (7, smiles, "x")


def test_total_atom_limit_counts_hydrogens():
    rec = record_from_smiles("C" * 30, "x", config=IntakeConfig(max_heavy_atoms=100, max_atoms=60))
    assert not rec.ok and "92 atoms > 60" in rec.error


def test_salt_keeps_largest_fragment_and_its_charge():
    rec = record_from_smiles("CC(=O)[O-].[Na+]", "salt")
    assert rec.ok and rec.smiles == "CC(=O)[O-]" and rec.charge == -1
    assert rec.notes == ["kept largest fragment of 2"]


def test_charged_species_keep_charge_unless_neutralized():
    assert record_from_smiles("C[NH3+]", "a").charge == 1
    rec = record_from_smiles("C[NH3+]", "a", config=IntakeConfig(neutralize=True))
    assert rec.ok and rec.charge == 0 and rec.smiles == "CN"
    quaternary = record_from_smiles("C[N+](C)(C)C", "q", config=IntakeConfig(neutralize=True))
    assert quaternary.charge == 1  # nothing to neutralize without a proton to remove


def test_elements_and_radicals_are_configurable():
    config = IntakeConfig(elements=("H", "C", "Si"), allow_radicals=True)
    assert record_from_smiles("C[Si](C)(C)C", "s", config=config).ok
    radical = record_from_smiles("[CH3]", "r", config=config)
    assert radical.ok and radical.spin == 2
    assert not record_from_smiles("CO", "o", config=config).ok  # O is now not allowed


def test_records_from_smiles_accepts_strings_and_pairs_in_order():
    recs = list(records_from_smiles(["CCO", ("my-id", "c1ccccc1"), "C1CC"]))
    assert [r.mol_id for r in recs] == ["mol-1", "my-id", "mol-3"]
    assert [r.row for r in recs] == [1, 2, 3]
    assert [r.ok for r in recs] == [True, True, False]
    assert all(isinstance(r, MoleculeRecord) for r in recs)


def test_record_from_mol_does_not_modify_its_input():
    from rdkit import Chem

    mol = Chem.MolFromSmiles("CC(=O)[O-].[Na+]")
    rec = record_from_mol(mol, "m")
    assert rec.ok and mol.GetNumAtoms() == 5 and rec.mol.GetNumAtoms() == 4
    assert not record_from_mol(None, "none").ok
