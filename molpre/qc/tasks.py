"""The PySCF labelling task the executor runs (molpre.executor): one ``QCResult`` per
ready-made conformer, importable and picklable for a process pool or Dask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from molpre.executor.hooks import maybe_crash


@dataclass
class ConformerItem:
    """One conformer to label (``row``: its index in the input; ``key``: its content key)."""

    row: int
    mol_id: str
    input: str
    atoms: Any
    key: str
    replace: bool = False


_VALID_LEVELS: set = set()


def conformer_label_task(items: list[ConformerItem], params: dict) -> list:
    """PySCF labels of ready-made conformers: one ``QCResult`` per item.

    params: level (LevelOfTheory), forces, threads. An unknown method or basis raises
    ``LevelError`` (the run stops) instead of giving every row the same error.
    """
    from pyscf import lib

    from molpre.qc.engines import compute
    from molpre.qc.levels import validate_level

    lib.num_threads(params.get("threads", 1))
    level = params["level"]
    if level not in _VALID_LEVELS:
        validate_level(level)
        _VALID_LEVELS.add(level)
    out = []
    for item in items:
        maybe_crash(item.mol_id)
        out.append(compute(item.atoms, level, forces=params["forces"]))
    return out
