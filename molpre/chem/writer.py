"""Write conformer outcomes as they arrive: extxyz frames plus an errors CSV.

``OUT.extxyz`` gets one frame per conformer; ``OUT.errors.csv`` (always written, header even
when empty) one ``row,input,reason`` line per rejected input. Both are written to temporary
files beside the targets (see :func:`molpre.outputs.atomic_output`) and renamed onto OUT and
OUT.errors.csv when the writer closes without an exception; an exception (a crash, Ctrl-C)
removes the temporary files and leaves any earlier OUT untouched.

ASE's extxyz reader drops single backslashes from string values (``C/C=C\\C`` would come back
as ``C/C=CC``, losing stereo); string values are written with doubled backslashes, which ASE
reads back exactly.
"""

from __future__ import annotations

import csv
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TextIO

import ase.io
from ase import Atoms

from molpre.chem.stream import ConformerOutcome
from molpre.outputs import OutputError, atomic_output

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
        self._stack = ExitStack()

    def __enter__(self) -> ConformerWriter:
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the folder of {self.out}: {err.strerror}") from None
        with ExitStack() as stack:
            self._frames = stack.enter_context(atomic_output(self.out))
            self._errors = stack.enter_context(atomic_output(self.errors, newline=""))
            self._stack = stack.pop_all()
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
        """Rename both files onto their targets, or (after an exception) discard them."""
        self._stack.__exit__(exc_type, exc, tb)
