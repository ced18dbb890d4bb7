"""An outside set the xTB corpus cannot hold, for the probe in probe_nci_large.yaml.

The first 150 valid molecules of RDKit's NCI sample made of H, C, N, O, F with 13-16 heavy
atoms (the corpus holds molecules of at most 12), one ETKDGv3 + MMFF94 conformer each (seed
0), HF/STO-3G energies (no forces) into labels.db, and the labeled rows into labeled.extxyz,
all in the current folder:

    python bench/results/qm9_xtb/nci_large.py
"""

from __future__ import annotations

import time
from pathlib import Path

import ase.io

from molpre.chem import default_corpus, records_from_smiles
from molpre.demo import labeled_set, make_conformers
from molpre.qc import LevelOfTheory, label_conformers

ELEMENTS, HEAVY, COUNT = set("HCNOF"), (13, 16), 150


def pick() -> list:
    """The first COUNT valid records of ELEMENTS with HEAVY heavy atoms, in file order."""
    picked = []
    for record in records_from_smiles(default_corpus()):
        if not record.ok:
            continue
        heavy = record.mol.GetNumHeavyAtoms()
        symbols = {atom.GetSymbol() for atom in record.mol.GetAtoms()}
        if HEAVY[0] <= heavy <= HEAVY[1] and symbols <= ELEMENTS:
            picked.append(record)
        if len(picked) == COUNT:
            break
    return picked


def main() -> None:
    picked = pick()
    print("picked", len(picked))
    make_conformers(picked, Path("conformers.extxyz"), 0, 1)
    frames = ase.io.read("conformers.extxyz", index=":")
    level = LevelOfTheory(method="HF", basis="sto-3g")
    start = time.time()
    summary = label_conformers(frames, Path("labels.db"), level, forces=False, workers=1)
    print(summary.line(), f"{time.time() - start:.1f} s")
    print("rows", labeled_set(Path("labels.db"), frames, level, Path("labeled.extxyz")))


if __name__ == "__main__":
    main()
