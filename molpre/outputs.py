"""The output guard, and output files that never leave a truncated file behind.

:func:`guard` is called by every command and job that writes, before any work: an output (or
a sidecar such as ``OUT.errors.csv``) may not be, contain or lie inside any input (data,
corpus, model folder, checkpoint, label store, job input, config file), also through
symlinks or hard links; a file output may not be a folder nor lie under a file, a folder
output may not be a file; and the folder it goes into must accept a new file. Each refusal
is one :class:`OutputError` line naming both paths. ``atomic_output`` writes to a temporary
file beside the target and renames it over the target only when the block ends without an
exception, so a crash or Ctrl-C leaves the old target (or nothing) in place.

    guard([out, errors_path(out)], [input_path])          # files
    guard([folder(out_dir)], [config.data, config.encoder])  # a folder the command fills
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from molpre.errors import first_line

#: Files of an input folder compared by inode when an output file has other hard links.
HARD_LINK_SCAN_LIMIT = 20000
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


class OutputError(click.ClickException):
    """An output that cannot or must not be written; ``str(err)`` is the one-line reason."""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Output:
    """An output path; ``is_folder``: a folder the command fills (else one file)."""

    path: Path
    is_folder: bool = False


def folder(path: str | Path) -> Output:
    """Mark ``path`` as an output folder for :func:`guard`."""
    return Output(Path(path), is_folder=True)


def is_url(path: str | Path) -> bool:
    """True for ``postgresql://...``, ``runs:/...``, ``models:/...`` and other URIs."""
    return bool(_SCHEME.match(str(path)))


def _outputs(outputs: Iterable[str | Path | Output | None]) -> list[Output]:
    return [o if isinstance(o, Output) else Output(Path(o)) for o in outputs
            if o is not None and not (not isinstance(o, Output) and is_url(o))]


def _inputs(inputs: Iterable[str | Path | None]) -> list[Path]:
    """Existing local input paths (a missing input has nothing to lose)."""
    paths = [Path(p) for p in inputs if p not in (None, "") and not is_url(p)]
    return [p for p in paths if os.path.lexists(p)]


def guard(outputs: Iterable[str | Path | Output | None], inputs: Iterable[str | Path | None],
          *, writable: bool = True) -> None:
    """The one output guard: raise :class:`OutputError` (one line naming both paths) unless
    every output is safe to write; see the module docstring.

    Args:
        outputs: every path the command writes, sidecars included (:func:`folder` marks a
            folder); None and URLs are skipped.
        inputs: every path the command reads; None, URLs and missing paths are skipped.
        writable: also check the shape of each output and that its folder accepts files.
    """
    outs, sources = _outputs(outputs), _inputs(inputs)
    for out in outs:
        for source in sources:
            reason = conflict(out.path, source)
            if reason:
                raise OutputError(reason)
    if writable:
        for out in outs:
            check_writable(out)


def refuse_overwriting_inputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """:func:`guard` without the writability checks (kept for older callers)."""
    guard(outputs, inputs, writable=False)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _via(path: Path) -> str:
    return " (through a link)" if _real(path) != Path(os.path.abspath(path)) else ""


def conflict(out: Path, source: Path) -> str | None:
    """Why writing ``out`` could destroy input ``source`` (it is, lies inside or contains it,
    through links too), or None."""
    o, s = _real(out), _real(source)
    if o == s or _same_inode(out, source):
        return (f"refusing to write {out}: it is the input {source}{_via(out) or _via(source)}"
                "; choose another output path")
    if s in o.parents:
        return (f"refusing to write {out}: it lies inside the input folder {source}"
                f"{_via(out)}; choose an output outside it")
    if o in s.parents:
        return (f"refusing to write into {out}: that folder holds the input {source}; "
                "choose another output folder")
    twin = _hard_link_inside(out, source)
    if twin is not None:
        return (f"refusing to write {out}: it is a hard link to {twin}, inside the input "
                f"folder {source}; choose another output path")
    return None


def _same_inode(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _hard_link_inside(out: Path, source: Path) -> Path | None:
    """A file inside input folder ``source`` that output file ``out`` is a hard link of."""
    try:
        stat = out.stat()
    except OSError:
        return None
    if not out.is_file() or stat.st_nlink < 2 or not source.is_dir():
        return None
    seen = 0
    for root, _, files in os.walk(source):
        for name in files:
            seen += 1
            if seen > HARD_LINK_SCAN_LIMIT:
                return None
            path = Path(root, name)
            try:
                other = path.stat()
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (stat.st_dev, stat.st_ino):
                return path
    return None


def check_writable(out: Output) -> None:
    """Raise :class:`OutputError` unless ``out`` can be created: the right kind (file or
    folder) where it exists, no file among its parents, and a folder that accepts a new file
    (tried by creating and removing one, which also catches read-only mounts and root)."""
    path = out.path
    if path.exists() and path.is_dir() != out.is_folder:
        kind = "a folder; give a file name" if path.is_dir() else "a file, not a folder"
        raise OutputError(f"cannot write {path}: it is {kind}")
    existing = path if out.is_folder and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is a file, not a folder")
    problem = _cannot_create_in(existing)
    if problem:
        raise OutputError(f"cannot write {path}: folder {existing} is not writable ({problem}); "
                          "choose a writable output folder")


def _cannot_create_in(directory: Path) -> str | None:
    try:
        handle, name = tempfile.mkstemp(prefix=".molpre-probe-", dir=directory)
    except OSError as err:
        return err.strerror or first_line(err)
    os.close(handle)
    os.unlink(name)
    return None


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
        path: the target file (its folder is created when missing).
        mode: "w" (text) or "wb"; ``open_kwargs`` go to ``open`` (e.g. ``newline=""``).

    Raises:
        OutputError: the folder cannot be created or is not writable (one line naming it).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
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
