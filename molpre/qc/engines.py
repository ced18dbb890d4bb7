"""One entry point for every level of theory: ``compute(atoms, level, forces) -> QCResult``.

The level's engine (:attr:`molpre.qc.levels.LevelOfTheory.engine`) picks the module:
PySCF (:mod:`molpre.qc.pyscf`), tblite's GFN-xTB (:mod:`molpre.qc.xtb`) or RDKit's MMFF
(:mod:`molpre.qc.mmff`); all return eV and eV/Angstrom and never raise for bad input.
"""

from __future__ import annotations

import importlib

from ase import Atoms

from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import QCResult

_MODULES = {"pyscf": "molpre.qc.pyscf", "tblite": "molpre.qc.xtb", "rdkit": "molpre.qc.mmff"}


def compute(atoms: Atoms, level: LevelOfTheory, forces: bool = False) -> QCResult:
    """Label one conformer at ``level`` (energy eV; forces ``[n, 3]`` eV/Angstrom)."""
    return importlib.import_module(_MODULES[level.engine]).compute(atoms, level, forces)


def compute_many(frames: list[Atoms], level: LevelOfTheory, forces: bool = False,
                 threads: int = 1) -> list[QCResult]:
    """:func:`compute` for each frame in this process, with OpenMP/BLAS threads pinned to
    ``threads`` for the whole loop (tblite runs 40x slower unpinned on a busy machine)."""
    from molpre.qc.xtb import pinned_threads

    with pinned_threads(threads):
        return [compute(atoms, level, forces) for atoms in frames]
