"""The command line's one error boundary: every way a command can end, as an exit status and
at most one line on stderr.

* molpre's errors and the expected OS and format errors (:func:`molpre.errors.is_expected`:
  I/O, permissions, decoding, a corrupt SQLite file or label store, an unreachable service,
  a file that is not a checkpoint) -> ``Error: <one line>``, exit 1;
* click's usage errors -> click's usage line and ``Error: <one line>``, exit 2;
* Ctrl-C -> ``molpre: interrupted``, exit 130 (SIGTERM: ``terminated``, 143);
* anything else is a bug -> ``Error: unexpected <Type>: <one line> (traceback in LOG)``, exit 1,
  with the traceback, command line and versions in a log file under ``$MOLPRE_LOG_DIR``
  (default ``~/.cache/molpre/logs``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from molpre.errors import describe, is_expected, one_line
from molpre.interrupts import Terminated

LOG_DIR_ENV = "MOLPRE_LOG_DIR"


def log_dir() -> Path:
    """Where crash logs go: ``$MOLPRE_LOG_DIR``, else ``$XDG_CACHE_HOME/molpre/logs`` (default
    ``~/.cache``)."""
    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "molpre" / "logs"


def write_crash_log(err: BaseException, argv: list[str]) -> Path:
    """Write the traceback of ``err`` with the command line and versions; returns the file
    (in the temporary folder when the log folder cannot be written)."""
    from molpre import __version__

    name = f"molpre-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = (f"molpre {__version__}, Python {sys.version.split()[0]}\n"
            f"command: molpre {' '.join(argv)}\ncwd: {os.getcwd()}\n\n"
            + "".join(traceback.format_exception(type(err), err, err.__traceback__)))
    for folder in (log_dir(), Path(tempfile.gettempdir()) / "molpre-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text)
            return path
        except OSError:
            continue
    return Path("<no writable log folder>")


def _error(text: str) -> None:
    click.echo(f"Error: {text}", err=True)


def _click_error(err: click.ClickException) -> int:
    err.message = one_line(err.message)
    if isinstance(err, click.UsageError):
        err.show()
    else:
        _error(err.format_message())
    return err.exit_code


def _interrupted(err: BaseException) -> int:
    terminated = isinstance(err, Terminated)
    click.echo(f"\nmolpre: {'terminated' if terminated else 'interrupted'}", err=True)
    return 143 if terminated else 130


def _failure(err: BaseException, argv: list[str]) -> int:
    if is_expected(err):
        _error(describe(err))
        return 1
    log = write_crash_log(err, argv)
    _error(f"unexpected {type(err).__name__}: {one_line(str(err))[:300]} (a bug in molpre; "
           f"the traceback is in {log})")
    return 1


def exit_code(call: Callable[[], Any], argv: list[str]) -> int:
    """Run ``call`` (the click group's main in non-standalone mode) and turn its outcome into
    an exit status, printing at most one error line (see the module docstring)."""
    try:
        result = call()
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.ClickException as err:
        return _click_error(err)
    except click.Abort as err:  # click turns KeyboardInterrupt and EOFError into Abort
        cause = err.__cause__ or err.__context__
        if isinstance(cause, EOFError):
            return _failure(cause, argv)
        return _interrupted(cause if isinstance(cause, BaseException) else err)
    except KeyboardInterrupt as err:
        return _interrupted(err)
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except Exception as err:  # noqa: BLE001 - the boundary: everything ends as one line
        return _failure(err, argv)
    return result if isinstance(result, int) else 0


def run(call: Callable[[], Any], argv: list[str]) -> NoReturn:
    """:func:`exit_code`, then ``sys.exit`` with it."""
    code = exit_code(call, argv)
    sys.stderr.flush()
    sys.exit(code)
