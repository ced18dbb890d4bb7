"""Run: pure chunk tasks on any ``concurrent.futures.Executor``-like backend.

``run_chunks`` keeps at most ``window`` chunks in flight, hands each finished chunk's results
to ``on_result`` (the single writer, in this process) and handles worker deaths:

* a chunk whose worker died (``BrokenProcessPool`` from a process pool, ``KilledWorker`` from
  Dask, or a lost connection) is re-run up to ``max_attempts`` times;
* after that it is split into single molecules, run last and one at a time, each up to
  ``max_attempts`` times (alone, a death is that molecule's fault);
* a single molecule that still kills its worker becomes an error row (``on_lost``) and the
  rest of the job goes on.

An ordinary exception raised by a task (a bug, not a death) turns that chunk's molecules into
error rows with the exception as the reason. Backends: :class:`ProcessBackend` (a local
``ProcessPoolExecutor``, renewed after it breaks) and :class:`DaskBackend`
(``Client.get_executor()``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from molpre.workflow.plan import Chunk

#: Exception type names that mean "the worker running this died", whatever the backend.
DEATH_TYPES = ("BrokenProcessPool", "KilledWorker", "CommClosedError", "FutureCancelledError")


def is_worker_death(exc: BaseException) -> bool:
    """True for exceptions that mean the task's worker process died (not a task error)."""
    return type(exc).__name__ in DEATH_TYPES


class ProcessBackend:
    """A local ``ProcessPoolExecutor`` (forkserver, one thread per worker), renewed when broken."""

    name = "processes"

    def __init__(self, workers: int, threads: int = 1) -> None:
        self.workers, self.threads = workers, threads
        self._executor: ProcessPoolExecutor | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                                 initializer=set_threads, initargs=(self.threads,))
        return self._executor

    def renew(self) -> None:
        """Drop a broken pool; the next ``executor`` starts a fresh one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


class DaskBackend:
    """A Dask ``Client``'s executor (``pure=False``: a re-run is a new task)."""

    name = "dask"

    def __init__(self, client) -> None:
        self.client = client
        self.executor = client.get_executor(pure=False)

    def renew(self) -> None:
        """Nothing to do: Dask replaces dead workers itself."""

    def close(self) -> None:
        """The client's owner closes it."""


def set_threads(threads: int) -> None:
    """OpenMP/BLAS thread counts of this process (before numpy/PySCF is imported, ideally)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


@dataclass
class RunStats:
    """What happened to the chunks: deaths seen, re-runs, splits, molecules lost to deaths."""

    deaths: int = 0
    reruns: int = 0
    splits: int = 0
    lost: int = 0


def run_chunks(backend, task: Callable, params: dict, chunks: Iterator[Chunk],
               on_result: Callable[[Chunk, list], None],
               on_lost: Callable[[Chunk, str], None], *, max_attempts: int = 2,
               window: int = 8) -> RunStats:
    """Run ``task(chunk.records, params) -> list`` for every chunk; see the module docstring.

    Args:
        backend: has ``executor`` (with ``submit``) and ``renew()`` (after a broken pool).
        on_result: called with (chunk, task's return value) in this process, as chunks finish.
        on_lost: called with (chunk, reason) for chunks that end without a result.
        max_attempts: runs of a chunk lost to worker deaths before it is split (and of each
            single molecule of a split chunk before it becomes an error row).
        window: chunks in flight at most (bounds memory for large inputs).

    The singles of a split chunk run last and one at a time, so that a death is the fault of
    the one molecule running (a process pool cannot tell whose task killed it).
    """
    stats = RunStats()
    retry: deque[Chunk] = deque()
    isolated: deque[Chunk] = deque()
    pending: dict[Future, Chunk] = {}
    exhausted = False
    while True:
        while len(pending) < window and (retry or not exhausted):
            chunk = retry.popleft() if retry else next(chunks, None)
            if chunk is None:
                exhausted = True
                break
            _submit(backend, task, params, chunk, pending)
        if not pending and isolated:
            _submit(backend, task, params, isolated.popleft(), pending)
        if not pending:
            return stats
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in done:
            chunk = pending.pop(future)
            target = isolated if chunk.isolated else retry
            _settle(backend, future, chunk, on_result, on_lost, target, isolated, stats,
                    max_attempts)


def _submit(backend, task, params, chunk: Chunk, pending: dict) -> None:
    try:
        future = backend.executor.submit(task, chunk.records, params)
    except BrokenProcessPool:
        backend.renew()
        future = backend.executor.submit(task, chunk.records, params)
    pending[future] = chunk


def _settle(backend, future: Future, chunk: Chunk, on_result, on_lost, retry: deque,
            isolated: deque, stats: RunStats, max_attempts: int) -> None:
    exc = future.exception()
    if exc is None:
        on_result(chunk, future.result())
        return
    if not is_worker_death(exc):
        text = str(exc).strip().splitlines()
        on_lost(chunk, f"task error: {type(exc).__name__}: {text[0] if text else ''}"[:300])
        return
    stats.deaths += 1
    if isinstance(exc, BrokenProcessPool):
        backend.renew()
    chunk.attempts += 1
    if chunk.attempts < max_attempts:
        stats.reruns += 1
        retry.append(chunk)
    elif not chunk.isolated:  # a lone molecule is isolated too: its neighbours may be guilty
        stats.splits += 1
        isolated.extend(chunk.split())
    else:
        stats.lost += 1
        on_lost(chunk, f"worker process died while computing this molecule "
                       f"({type(exc).__name__}, {chunk.attempts} runs)")
