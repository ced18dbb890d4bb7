"""Write conformer outcomes as they arrive: extxyz frames plus an errors CSV.

``OUT.extxyz`` gets one frame per conformer; ``OUT.errors.csv`` (always written, header even
when empty) one ``row,input,reason`` line per rejected input. Both are flushed per molecule,
so an interrupted run keeps everything finished so far.

ASE's extxyz reader drops single backslashes from string values (``C/C=C\\C`` would come back
as ``C/C=CC``, losing stereo); string values are written with doubled backslashes, which ASE
reads back exactly.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import TextIO

import ase.io
from ase import Atoms

from molpre.chem.stream import ConformerOutcome

ERRORS_HEADER = ("row", "input", "reason")


def errors_path(out: str | Path) -> Path:
    """``OUT.extxyz`` -> ``OUT.errors.csv``."""
    return Path(out).with_suffix(".errors.csv")


def write_frame(handle: TextIO, atoms: Atoms) -> None:
    """Append one extxyz frame, escaping backslashes in string info values (see module doc)."""
    frame = atoms.copy()
    frame.info = {k: v.replace("\\", "\\\\") if isinstance(v, str) else v
                  for k, v in atoms.info.items()}
    ase.io.write(handle, frame, format="extxyz")


class ConformerWriter:
    """Context manager that writes outcomes and counts ok / failed / conformers."""

    def __init__(self, out: str | Path) -> None:
        self.out, self.errors = Path(out), errors_path(out)
        self.ok = self.failed = self.conformers = 0
        self._frames: TextIO | None = None
        self._errors: TextIO | None = None

    def __enter__(self) -> ConformerWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._frames = open(self.out, "w")
        self._errors = open(self.errors, "w", newline="")
        self._csv = csv.writer(self._errors)
        self._csv.writerow(ERRORS_HEADER)
        self._errors.flush()
        return self

    def write(self, outcome: ConformerOutcome) -> None:
        """Frames for an ok outcome, an error row otherwise."""
        if outcome.ok and outcome.conformers:
            for atoms in outcome.conformers:
                write_frame(self._frames, atoms)
            self._frames.flush()
            self.ok += 1
            self.conformers += len(outcome.conformers)
            return
        reason = outcome.error or "no conformers"
        self._csv.writerow((outcome.record.row, outcome.record.input, reason))
        self._errors.flush()
        self.failed += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in (self._frames, self._errors):
            if handle is not None:
                handle.close()
