"""The label job: conformers in, one store row each out; resumable after a kill at any moment.

Workers (spawned processes, see :mod:`molpre.qc.worker`) compute; this process is the one
writer. Every result is written in its own transaction with its content key, so a SIGKILL
loses at most the conformers in flight, and the next run skips every key already stored.
Failed rows are skipped too unless ``retry_failed`` (e.g. after raising the time limit or
max_cycle), which replaces them. A conformer identical (same key) to one earlier in the same
input is counted as a duplicate and not stored twice.

Time limit: the SCF checks ``level.time_limit_s`` each iteration (a clean error row); a
worker still busy ``kill_grace_s`` after the limit (stuck in grid/DF setup or gradients) is
killed and replaced, and its conformer gets a "time limit exceeded" row. A worker that dies
(segfault, out of memory) gives a "worker process died" row. The run goes on either way.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from multiprocessing.connection import wait
from pathlib import Path

from ase import Atoms

from molpre.data.store import open_store, stored_keys, write_row
from molpre.qc.content_keys import content_key
from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import QCResult
from molpre.qc.worker import Slot, WorkerPool

#: Abort the run (instead of writing failed rows forever) when workers die this often in a row.
MAX_CONSECUTIVE_DEATHS = 3


@dataclass
class LabelSummary:
    """Counts of one run: every input conformer is ok, failed, skipped or a duplicate."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.skipped + self.duplicates

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"{self.total} conformers: {self.ok} ok, {self.failed} failed, "
                f"{self.skipped} skipped (already stored), {self.duplicates} duplicates, "
                f"{self.seconds:.1f} s")


def check_threads(workers: int, threads: int, oversubscribe: bool = False) -> None:
    """Raise ValueError if ``workers * threads`` exceeds ``os.cpu_count()`` (unless allowed)."""
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1 (got {workers} x {threads})")
    cores = os.cpu_count() or 1
    if workers * threads > cores and not oversubscribe:
        raise ValueError(f"{workers} workers x {threads} threads = {workers * threads} > "
                         f"{cores} cores; lower them or allow oversubscription (--oversubscribe)")


def level_meta(level: LevelOfTheory) -> dict:
    """Key-value pairs naming the level of theory and the PySCF version (no PySCF import)."""
    return {"method": level.method, "basis": level.basis, "level": level.tag,
            "pyscf_version": metadata.version("pyscf")}


def _tasks(frames: Iterable[Atoms], level: LevelOfTheory, done: dict[str, str],
           retry_failed: bool, summary: LabelSummary, tick) -> Iterator[tuple]:
    """Conformers still to compute as ``(task_id, atoms, level, key, replace)``; counts skips."""
    seen: set[str] = set()
    for task_id, atoms in enumerate(frames):
        key = content_key(atoms, level)
        status = done.get(key)
        if key in seen:
            summary.duplicates += 1
            tick()
        elif status == "ok" or (status == "failed" and not retry_failed):
            summary.skipped += 1
            tick()
        else:
            seen.add(key)
            yield (task_id, atoms, level, key, status == "failed")


def label_conformers(
    frames: Iterable[Atoms], db_path: str | Path, level: LevelOfTheory, forces: bool = False,
    workers: int = 1, threads: int = 1, *, oversubscribe: bool = False,
    retry_failed: bool = False, progress: bool = False, kill_grace_s: float = 10.0,
) -> LabelSummary:
    """Label ``frames`` (conformers with ``info`` mol_id, conf_id, charge, spin, ...) into a store.

    Args:
        frames: conformers, positions in Angstrom; may be a lazy iterator.
        db_path: ASE database path (SQLite) or URL (PostgreSQL).
        level: level of theory and limits (max_atoms, time_limit_s, max_cycle).
        forces: also store forces (eV/Angstrom).
        workers, threads: processes and threads per process; product <= cores unless
            ``oversubscribe``.
        retry_failed: recompute conformers whose stored row failed (and replace that row).
        progress: show a tqdm progress bar.
        kill_grace_s: seconds past ``level.time_limit_s`` before a busy worker is killed.

    Returns:
        LabelSummary with ok/failed/skipped/duplicate counts and wall seconds.

    Raises:
        ValueError: workers x threads over the cores; ``LevelError`` (a ValueError) for an
            unknown method or basis, found by the workers (this process never imports PySCF).
    """
    from tqdm import tqdm

    check_threads(workers, threads, oversubscribe)
    start = time.monotonic()
    db = open_store(db_path)
    meta, summary = level_meta(level), LabelSummary()
    total = len(frames) if hasattr(frames, "__len__") else None
    bar = tqdm(total=total, disable=not progress, unit="conf", desc="label")
    tasks = _tasks(frames, level, stored_keys(db), retry_failed, summary, bar.update)

    def record(task: tuple, result: QCResult) -> None:
        _, atoms, _, _, key, replace = task
        if write_row(db, atoms, key, result, meta, replace=replace) is None:
            summary.skipped += 1  # stored meanwhile by another writer of the same store
        elif result.ok:
            summary.ok += 1
        else:
            summary.failed += 1
        bar.update()
        bar.set_postfix(ok=summary.ok, failed=summary.failed, refresh=False)

    pool = None
    try:
        first = next(tasks, None)  # start workers only when there is work (resume is instant)
        if first is not None:
            pool = WorkerPool(workers, threads)
            _drive(pool, itertools.chain([first], tasks), level, forces, record, kill_grace_s)
    finally:
        if pool is not None:
            pool.close()
        bar.close()
    summary.seconds = time.monotonic() - start
    return summary


def _drive(pool: WorkerPool, tasks: Iterator[tuple], level: LevelOfTheory, forces: bool,
           record, kill_grace_s: float) -> None:
    """Keep every ready worker busy until ``tasks`` runs out; handle results, deaths, overruns."""
    limit = level.time_limit_s + kill_grace_s if level.time_limit_s else None
    exhausted = False
    while True:
        for slot in pool.slots:
            if slot.ready and slot.task is None and not exhausted:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    pool.submit(slot, (task[0], task[1], task[2], forces, *task[3:]))
        busy = [s for s in pool.slots if s.task is not None]
        if exhausted and not busy:
            return
        watched = [s for s in pool.slots if s.task is not None or not s.ready]
        timeout = None
        if limit is not None and busy:
            timeout = max(0.0, min(s.started + limit for s in busy) - time.monotonic())
        ready = wait([s.conn for s in watched] + [s.process.sentinel for s in watched], timeout)
        for slot in watched:
            _settle(pool, slot, ready, limit, record)


def _settle(pool: WorkerPool, slot: Slot, ready: list, limit: float | None, record) -> None:
    """Take a slot's message; record a finished, dead or overdue task and free the slot."""
    task = slot.task
    if slot.conn in ready:
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            message = None
        if message == "ready":
            slot.ready = True
            return
        if message is not None:
            slot.task, pool.deaths = None, 0
            if isinstance(message[1], Exception):
                raise message[1]
            record(task, message[1])
            return
    if slot.conn in ready or slot.process.sentinel in ready:
        slot.process.join(timeout=1)
        code = slot.process.exitcode
        pool.deaths += 1
        if pool.deaths >= MAX_CONSECUTIVE_DEATHS:
            raise RuntimeError(f"labeling workers died {pool.deaths} times in a row "
                               f"(last exit code {code}); see their stderr above")
        pool.replace(slot)
        if task is not None:
            record(task, QCResult(ok=False, reason=f"worker process died (exit code {code})"))
    elif task is not None and limit is not None and time.monotonic() - slot.started > limit:
        elapsed = time.monotonic() - slot.started
        pool.replace(slot)
        record(task, QCResult(ok=False, wall_s=elapsed, reason=(
            f"time limit exceeded ({task[2].time_limit_s:g} s; worker killed after {elapsed:.1f} s)")))
