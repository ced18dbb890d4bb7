"""A labeling worker process: receives conformers on a pipe, returns ``QCResult`` objects.

Started with the ``spawn`` context by :class:`WorkerPool`. The OpenMP/BLAS thread variables
are put in the child's environment at start, so they hold before numpy or PySCF is imported;
``pyscf.lib.num_threads`` is set again inside. Workers never touch the store.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def serve(conn: Connection, threads: int) -> None:
    """Worker loop: ``(task_id, atoms, level, forces)`` in, ``(task_id, QCResult)`` out
    (or ``(task_id, LevelError)`` for an unknown method/basis); None stops."""
    try:
        from pyscf import lib

        lib.num_threads(threads)
        from molpre.qc.levels import LevelError, validate_level
        from molpre.qc.pyscf import compute

        conn.send("ready")  # imports done: the parent starts the clock on a task from here
        valid: set = set()
        while (task := conn.recv()) is not None:
            task_id, atoms, level, forces = task
            if level not in valid:  # an unknown method/basis stops the run, not one row
                try:
                    validate_level(level)
                except LevelError as err:
                    conn.send((task_id, err))
                    continue
                valid.add(level)
            conn.send((task_id, compute(atoms, level, forces=forces)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the parent went away or the user pressed Ctrl-C: exit quietly


@dataclass
class Slot:
    """One worker process and the task it is running (``task`` None when idle)."""

    process: mp.Process
    conn: Connection
    task: tuple | None = None
    started: float = 0.0
    ready: bool = False


class WorkerPool:
    """``workers`` spawned processes with ``threads`` threads each, one task at a time each."""

    def __init__(self, workers: int, threads: int) -> None:
        self.threads = threads
        self.context = mp.get_context("spawn")
        self.deaths = 0  # consecutive worker deaths (reset by any result)
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> Slot:
        parent, child = self.context.Pipe()
        saved = {name: os.environ.get(name) for name in THREAD_VARS}
        os.environ.update({name: str(self.threads) for name in THREAD_VARS})
        try:
            process = self.context.Process(target=serve, args=(child, self.threads), daemon=True)
            process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        child.close()
        return Slot(process, parent)

    def submit(self, slot: Slot, task: tuple) -> None:
        """Send ``task`` = (task_id, atoms, level, forces, ...extra kept by the pool) to an idle slot."""
        slot.conn.send(task[:4])
        slot.task, slot.started = task, time.monotonic()

    def replace(self, slot: Slot) -> None:
        """Kill a slot's process (time limit or crash) and start a fresh one in its place."""
        slot.process.kill()
        slot.process.join()
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn, slot.task, slot.ready = fresh.process, fresh.conn, None, False

    def close(self) -> None:
        """Stop idle workers politely, kill busy ones, reap all."""
        for slot in self.slots:
            try:
                if slot.task is None and slot.ready:
                    slot.conn.send(None)
                else:
                    slot.process.kill()
            except OSError:
                pass
        for slot in self.slots:
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
