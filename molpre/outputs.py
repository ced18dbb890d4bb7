"""Output files that never destroy an input and never leave a truncated file behind.

``refuse_overwriting_inputs`` is called by every command before it opens anything for
writing: an output (or a sidecar such as ``OUT.errors.csv``) that resolves to an input, through
symlinks or hard links, is refused with a one-line error. ``atomic_output`` writes to a
temporary file beside the target and renames it over the target only when the block ends
without an exception, so a crash or Ctrl-C leaves the old target (or nothing) in place.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from molpre.errors import first_line


class OutputError(click.ClickException):
    """An output that cannot or must not be written; ``str(err)`` is the one-line reason."""

    def __str__(self) -> str:
        return self.message


def _is_url(path: str | Path) -> bool:
    return "://" in str(path)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: Iterable[str | Path],
                              inputs: Iterable[str | Path]) -> None:
    """Raise :class:`OutputError` if any output path is (resolves to) one of the inputs.

    Args:
        outputs: every path the command will write, sidecars included; URLs are skipped.
        inputs: every path the command reads.
    """
    sources = [Path(p) for p in inputs if not _is_url(p)]
    for out in outputs:
        if _is_url(out):
            continue
        for source in sources:
            if _same_file(Path(out), source):
                raise OutputError(
                    f"refusing to write {out}: it is the input {source}; choose another "
                    "output path (-o; sidecars such as OUT.errors.csv go beside OUT)")


def _temp_beside(target: Path) -> tuple[int, Path]:
    """Create ``.NAME.<random>.tmp`` beside ``target`` (mode 0666 minus the umask)."""
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue


@contextmanager
def atomic_output(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and ``os.replace`` it onto
    ``path``; on an exception remove it and leave ``path`` as it was.

    Args:
        path: the target file (its folder must exist).
        mode: "w" (text) or "wb"; ``open_kwargs`` go to ``open`` (e.g. ``newline=""``).

    Raises:
        OutputError: the folder is missing or not writable (one line naming the path).
    """
    target = Path(path)
    try:
        fd, temp = _temp_beside(target)
    except OSError as err:
        reason = err.strerror or first_line(err)
        raise OutputError(f"cannot write {target}: {reason} (choose a writable output "
                          "folder)") from None
    try:
        with open(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temp, target.stat().st_mode & 0o7777)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
