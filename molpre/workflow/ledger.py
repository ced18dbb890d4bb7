"""The job ledger: one SQLite row per finished input row, written by the one writer process.

Dask keeps nothing across a scheduler or client death, so the ledger is the record of
progress: a row is done once its ledger row is committed (one transaction per chunk), and a
re-run of the same job (same job id) skips it. ``payload`` holds what the job's output needs
to be rebuilt (JSON text, or npz bytes for corpus conformers).

One job writes one output at a time: :func:`exclusive` holds an operating-system lock on
``OUT.ledger.sqlite.lock`` (freed when its holder dies) for the whole run, so a second
``molpre submit`` to the same output waits, then skips every row the first one finished.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (job TEXT PRIMARY KEY, kind TEXT, spec TEXT, input TEXT,
                                 input_sha256 TEXT, created REAL);
CREATE TABLE IF NOT EXISTS rows (job TEXT, row INTEGER, mol_id TEXT, input TEXT, status TEXT,
                                 reason TEXT, payload BLOB, PRIMARY KEY (job, row));
"""


@dataclass
class LedgerRow:
    """One finished input row: ``status`` "ok" or "error" with ``reason``."""

    row: int
    mol_id: str
    input: str
    status: str
    reason: str = ""
    payload: bytes | str | None = None


def ledger_path(out: str | Path) -> Path:
    """``OUT`` -> ``OUT.ledger.sqlite`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".ledger.sqlite")


def lock_path(out: str | Path) -> Path:
    """``OUT`` -> ``OUT.ledger.sqlite.lock``: the lock one running job holds on ``OUT``."""
    ledger = ledger_path(out)
    return ledger.with_name(ledger.name + ".lock")


@contextmanager
def exclusive(out: str | Path, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold the output's job lock while inside; when another live process holds it, call
    ``on_wait(lock file)`` once and wait for it (Ctrl-C ends the wait)."""
    from filelock import FileLock, Timeout

    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(path)
        lock.acquire(poll_interval=0.2)
    try:
        yield
    finally:
        lock.release()


class Ledger:
    """SQLite ledger of one output; use from one process (the writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.executescript(SCHEMA)

    def register(self, job: str, kind: str, spec: dict, input_path: str, sha: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO jobs VALUES (?,?,?,?,?,?)",
                            (job, kind, json.dumps(spec, default=str), input_path, sha,
                             time.time()))

    def done_rows(self, job: str) -> set[int]:
        return {r for (r,) in self.db.execute("SELECT row FROM rows WHERE job=?", (job,))}

    def record(self, job: str, rows: Iterable[LedgerRow]) -> int:
        """Commit ``rows`` in one transaction; a row already there is kept (returns new count)."""
        with self.db:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO rows VALUES (?,?,?,?,?,?,?)",
                [(job, r.row, r.mol_id, r.input, r.status, r.reason, r.payload) for r in rows])
            return self.db.total_changes - before

    def rows(self, job: str) -> Iterator[LedgerRow]:
        """Every recorded row of ``job`` in input order."""
        cursor = self.db.execute("SELECT row, mol_id, input, status, reason, payload FROM rows "
                                 "WHERE job=? ORDER BY row", (job,))
        for values in cursor:
            yield LedgerRow(*values)

    def counts(self, job: str) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT status, COUNT(*) FROM rows WHERE job=? GROUP BY status", (job,)).fetchall())

    def close(self) -> None:
        self.db.close()
