"""QM9-like molecules a user can make from their own pool: every single-edit neighbour of the
protocol's 2,000 training-pool molecules, none of them a test molecule, as a SMILES CSV for a
cheap-level corpus:

    python bench/results/qm9_xtb/mutants/make_mutants.py QM9_EXTXYZ_GZ TEST_IDS_TXT N SEED OUT.csv

An edit is one of: change a heavy atom's element (C, N, O, F), attach one heavy atom by a
single bond where a hydrogen was, remove a terminal heavy atom, or raise / lower one bond's
order by one. A neighbour is kept when RDKit sanitizes it, it is one neutral closed-shell
fragment of H, C, N, O, F with 3 to 9 heavy atoms (QM9's domain), and its InChIKey
connectivity block (the first 14 characters: every stereoisomer and isotopologue alike) is
no pool or test molecule's, by the keys the study's audit computes (`eval_keys`: from the
given SMILES, else from the geometry). N of the unique neighbours are drawn with SEED.
TEST_IDS_TXT is checked to be exactly the protocol's test set (as ``../pool/make_pool.py``).
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections.abc import Iterator

import ase.io
import numpy as np
from rdkit import Chem, RDLogger

from molpre.study.contamination import eval_keys

RDLogger.DisableLog("rdApp.*")
ELEMENTS = (6, 7, 8, 9)
MAX_VALENCE = {6: 4, 7: 3, 8: 2, 9: 1}


def _block(mol: Chem.Mol) -> str | None:
    key = Chem.MolToInchiKey(mol)
    return key[:14] if key else None


def _element_swaps(mol: Chem.Mol) -> Iterator[Chem.Mol]:
    for atom in mol.GetAtoms():
        for z in ELEMENTS:
            if z != atom.GetAtomicNum():
                edit = Chem.RWMol(mol)
                edit.GetAtomWithIdx(atom.GetIdx()).SetAtomicNum(z)
                yield edit


def _attachments(mol: Chem.Mol) -> Iterator[Chem.Mol]:
    for atom in mol.GetAtoms():
        if atom.GetTotalNumHs() == 0:
            continue
        for z in ELEMENTS:
            edit = Chem.RWMol(mol)
            new = edit.AddAtom(Chem.Atom(z))
            edit.AddBond(atom.GetIdx(), new, Chem.BondType.SINGLE)
            yield edit


def _removals(mol: Chem.Mol) -> Iterator[Chem.Mol]:
    for atom in mol.GetAtoms():
        if atom.GetDegree() == 1:
            edit = Chem.RWMol(mol)
            edit.RemoveAtom(atom.GetIdx())
            yield edit


def _bond_orders(mol: Chem.Mol) -> Iterator[Chem.Mol]:
    steps = {Chem.BondType.SINGLE: (Chem.BondType.DOUBLE,),
             Chem.BondType.DOUBLE: (Chem.BondType.SINGLE, Chem.BondType.TRIPLE),
             Chem.BondType.TRIPLE: (Chem.BondType.DOUBLE,)}
    for bond in mol.GetBonds():
        for order in steps.get(bond.GetBondType(), ()):
            edit = Chem.RWMol(mol)
            edit.GetBondWithIdx(bond.GetIdx()).SetBondType(order)
            yield edit


def _valid(edit: Chem.RWMol) -> Chem.Mol | None:
    for atom in edit.GetAtoms():
        atom.SetNoImplicit(False)
        atom.SetNumExplicitHs(0)
        atom.SetFormalCharge(0)
        atom.SetNumRadicalElectrons(0)
        if atom.GetDegree() > MAX_VALENCE.get(atom.GetAtomicNum(), 0):
            return None
    try:
        mol = edit.GetMol()
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several types for an impossible valence
        return None
    if len(Chem.GetMolFrags(mol)) != 1 or not 3 <= mol.GetNumHeavyAtoms() <= 9:
        return None
    if any(a.GetAtomicNum() not in ELEMENTS or a.GetFormalCharge() or a.GetNumRadicalElectrons()
           for a in mol.GetAtoms()):
        return None
    return mol


def neighbours(mol: Chem.Mol) -> Iterator[Chem.Mol]:
    """Every valid single-edit neighbour of ``mol`` (kekulized, implicit hydrogens)."""
    Chem.Kekulize(mol, clearAromaticFlags=True)
    for edits in (_element_swaps, _attachments, _removals, _bond_orders):
        for edit in edits(mol):
            valid = _valid(edit)
            if valid is not None:
                yield valid


def main(qm9_path: str, test_ids_path: str, n: str, seed: str, out_path: str) -> None:
    with gzip.open(qm9_path, "rt") as handle:
        molecules = ase.io.read(handle, index=":", format="extxyz")
    test = set(open(test_ids_path).read().split())
    order = np.random.default_rng(0).permutation(len(molecules))
    if test != {molecules[i].info["mol_id"] for i in order[:1000]}:
        raise SystemExit(f"{test_ids_path} is not the protocol's test set")
    keys = eval_keys(molecules)  # the study audit's own keys (geometry where SMILES is absent)
    excluded = {k.block for k in keys} - {""}  # every pool and test molecule
    found: dict[str, str] = {}
    for i in order[1000:]:
        if not keys[i].smiles:
            continue
        for mol in neighbours(Chem.MolFromSmiles(keys[i].smiles)):
            block = _block(mol)
            if block and block not in excluded and block not in found:
                found[block] = Chem.MolToSmiles(mol)
    blocks = sorted(found)
    pick = np.random.default_rng(int(seed)).permutation(len(blocks))[:int(n)]
    with open(out_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "smiles"])
        for rank, j in enumerate(sorted(pick)):
            writer.writerow([f"mut_{rank:06d}", found[blocks[j]]])
    print(f"{len(found)} unique single-edit neighbours of the 2,000 pool molecules "
          f"(none a pool or test molecule by InChIKey block); {min(int(n), len(found))} drawn "
          f"with seed {seed} -> {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
