"""Chunks: the unit of work an executor runs, a list of records under one index.

A record is anything picklable; :meth:`Chunk.split` (one chunk per record) is what the run
loop does with a chunk that keeps killing its worker. Intake records
(molpre.chem.MoleculeRecord) and the label runner's conformers carry ``row``, ``mol_id`` and
``input``; a study child is one job dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Chunk:
    """Records sent to one task; ``attempts`` counts runs lost to a dead worker;
    ``isolated``: a single record split out of a chunk that killed its worker."""

    index: int
    records: list[Any]
    attempts: int = 0
    isolated: bool = False

    @property
    def rows(self) -> list[int]:
        """The ``row`` of each record (records that have one)."""
        return [r.row for r in self.records]

    def split(self) -> list[Chunk]:
        """One single-record chunk per record (for a chunk that keeps killing workers)."""
        return [Chunk(self.index, [r], isolated=True) for r in self.records]
