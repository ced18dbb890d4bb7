"""One way to turn an exception into the one-line reason that error rows and messages carry,
and one rule for which exceptions are the user's input or environment rather than a bug."""

from __future__ import annotations

import csv
import pickle
import sqlite3
import zipfile

#: Exception types that say something about the input or the environment (I/O, permissions,
#: decoding, corrupt SQLite, unpickling a file that is not a checkpoint, a truncated stream,
#: no memory): a command reports them in one line, without a traceback.
EXPECTED_TYPES: tuple[type[BaseException], ...] = (
    OSError, UnicodeError, EOFError, MemoryError, sqlite3.Error, pickle.UnpicklingError,
    zipfile.BadZipFile, csv.Error,
)

#: Modules whose exceptions are deliberate reports: molpre's own errors, services that could
#: not be reached or refused a request, and file formats that could not be parsed.
EXPECTED_MODULES: tuple[str, ...] = (
    "molpre.", "mlflow.exceptions", "urllib3.exceptions", "requests.exceptions",
    "sqlalchemy.exc", "yaml.", "pandas.errors", "distributed.comm",
)


class TargetError(ValueError):
    """An unknown target name or unit, or a value that is not a number (molpre.targets)."""


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first non-empty line of ``str(err)`` (at most ``limit`` characters), or the
    exception's type name when its message is empty."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    text = lines[0].strip() if lines else type(err).__name__
    return text[:limit] if limit else text


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def is_expected(err: BaseException) -> bool:
    """True when ``err`` reports bad input or an unusable environment (see EXPECTED_TYPES and
    EXPECTED_MODULES), False for anything that points at a bug."""
    if isinstance(err, EXPECTED_TYPES):
        return True
    return any(cls.__module__.startswith(EXPECTED_MODULES) for cls in type(err).__mro__
               if cls.__module__ not in ("builtins", "__main__"))


def describe(err: BaseException) -> str:
    """One line for an expected error: its message, with the file name when the exception
    carries one that the message lacks (``OSError.filename``)."""
    text = one_line(str(err)) or type(err).__name__
    name = getattr(err, "filename", None)
    if isinstance(err, OSError) and name and str(name) not in text:
        text = f"{name}: {text}"
    if isinstance(err, UnicodeDecodeError):
        text = f"not UTF-8 text ({text})"
    return text
