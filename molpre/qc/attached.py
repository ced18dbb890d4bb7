"""Cheap-level results carried on a conformer's ``atoms.info``, computed where it was made.

A delta model's Predictor needs its cheap level (GFN2-xTB, MMFF) for every conformer. Run as
the conformer stream's ``after`` hook (:func:`molpre.chem.conformer_stream`), it is computed
in the worker process that embedded the molecule, so it spreads over the workers with the
embedding instead of running one conformer at a time in the parent. :func:`take_attached`
reads a result back once (and removes it, so it is never written out with the geometry).
"""

from __future__ import annotations

from ase import Atoms

from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import QCResult

#: ``atoms.info`` key of an attached result: ``(level tag, with forces, QCResult)``.
INFO_KEY = "molpre_cheap_result"


def attach_results(conformers: list[Atoms], level: LevelOfTheory, forces: bool = False,
                   elements: frozenset[int] | None = None) -> None:
    """Compute ``level`` for each conformer (this process, threads pinned to one) and keep
    the result on its ``atoms.info``; a failed calculation is kept as a failed result.
    ``elements``: only conformers made of these atomic numbers (a model turns the others
    down, so their cheap level would be wasted)."""
    from molpre.qc.engines import compute_many

    if elements is not None:
        conformers = [a for a in conformers if set(a.numbers.tolist()) <= elements]
    for atoms, result in zip(conformers, compute_many(conformers, level, forces=forces),
                             strict=True):
        atoms.info[INFO_KEY] = (level.tag, bool(forces), result)


def take_attached(atoms: Atoms, level: LevelOfTheory, forces: bool = False) -> QCResult | None:
    """The result attached to ``atoms`` for ``level`` (with forces when asked), removed from
    its info; None when there is none that fits (then compute it)."""
    entry = atoms.info.pop(INFO_KEY, None)
    if entry is None:
        return None
    tag, has_forces, result = entry
    if tag != level.tag or (forces and not has_forces):
        return None
    return result
