"""The command line's one error boundary (molpre.cli.boundary): expected errors are one line,
a bug is one line plus the path of a log holding its traceback, Ctrl-C is status 130."""

from __future__ import annotations

import pickle
import sqlite3

import click
import pytest
from ase.build import molecule
from click.testing import CliRunner

from molpre.cli import boundary, main
from molpre.data.datasets import DatasetError
from molpre.data.store import StoreError, open_store, write_row
from molpre.interrupts import Terminated
from molpre.qc.pyscf import QCResult


def raising(err: BaseException):
    def call():
        raise err
    return call


@pytest.fixture(autouse=True)
def log_dir(tmp_path, monkeypatch):
    folder = tmp_path / "logs"
    monkeypatch.setenv(boundary.LOG_DIR_ENV, str(folder))
    return folder


@pytest.mark.parametrize("err", [
    DatasetError("labels.db holds no labeled conformer"),
    StoreError("label store trunc.db is unreadable (database disk image is malformed)"),
    sqlite3.DatabaseError("file is not a database"),
    PermissionError(13, "Permission denied", "/sys/x"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    pickle.UnpicklingError("invalid load key, 'x'."),
    ConnectionRefusedError(111, "Connection refused"),
], ids=lambda e: type(e).__name__)
def test_expected_errors_are_one_line_and_status_1(err, capsys, log_dir):
    assert boundary.exit_code(raising(err), ["cmd"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert not log_dir.exists()


def test_a_bug_is_one_line_with_the_path_of_its_traceback(capsys, log_dir):
    def nested_failure():
        return [1, 2][5]

    assert boundary.exit_code(nested_failure, ["study", "--report-only"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("Error: unexpected IndexError: list index out of range")
    (log,) = log_dir.iterdir()
    assert str(log) in line
    text = log.read_text()
    assert "Traceback" in text and "nested_failure" in text and "study --report-only" in text


def test_interrupts_and_click_outcomes(capsys):
    assert boundary.exit_code(raising(KeyboardInterrupt()), []) == 130
    assert "interrupted" in capsys.readouterr().err
    assert boundary.exit_code(raising(Terminated()), []) == 143
    assert "terminated" in capsys.readouterr().err
    aborted = click.Abort()
    aborted.__cause__ = EOFError("Compressed file ended before the end-of-stream marker")
    assert boundary.exit_code(raising(aborted), []) == 1
    assert capsys.readouterr().err.strip().startswith("Error: Compressed file ended")
    assert boundary.exit_code(raising(click.ClickException("two\nlines")), []) == 1
    assert capsys.readouterr().err.strip() == "Error: two lines"
    assert boundary.exit_code(lambda: 3, []) == 3
    assert boundary.exit_code(lambda: None, []) == 0


def test_main_runs_every_command_inside_the_boundary(tmp_path, monkeypatch, log_dir):
    import molpre.data.store

    db = tmp_path / "labels.db"
    write_row(open_store(db), molecule("H2"), "k1", QCResult(ok=False, reason="x"), {"level": "hf"})

    def broken(*args, **kwargs):
        return {}["a key that is not there"]

    monkeypatch.setattr(molpre.data.store, "export_extxyz", broken)
    result = CliRunner().invoke(main, ["export", str(db), "-o", str(tmp_path / "x.extxyz")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert line.startswith("Error: unexpected KeyError") and str(log_dir) in line
    assert "broken" in next(log_dir.iterdir()).read_text()
