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
import threading
import time
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
    """A local ``ProcessPoolExecutor`` (forkserver), renewed when broken.

    Each worker runs ``threads`` OpenMP/BLAS threads and exits on its own when this process
    is killed (an orphaned pool worker would otherwise wait on its queue forever).
    ``preload``: modules the forkserver imports once, so that each worker starts fast.
    """

    name = "processes"

    def __init__(self, workers: int, threads: int = 1, preload: tuple[str, ...] = ()) -> None:
        self.workers, self.threads, self.preload = workers, threads, list(preload)
        self._executor: ProcessPoolExecutor | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            if self.preload:
                context.set_forkserver_preload(self.preload)
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=init_worker,
                initargs=(self.threads, os.getpid()))
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


def init_worker(threads: int, parent_pid: int) -> None:
    """Pool worker start: thread counts, and a watchdog that exits when the parent is gone."""
    set_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    while True:
        time.sleep(every_s)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid exists (reused by another user): keep going
            continue


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
    """
    stats = RunStats()
    for chunk, result, reason in iter_chunk_results(backend, task, params, chunks, stats,
                                                    max_attempts=max_attempts, window=window):
        if chunk is None:
            continue
        if reason is None:
            on_result(chunk, result)
        else:
            on_lost(chunk, reason)
    return stats


def iter_chunk_results(backend, task: Callable, params: dict, chunks: Iterator[Chunk],
                       stats: RunStats, *, max_attempts: int = 2, window: int = 8,
                       room: Callable[[], bool] = lambda: True
                       ) -> Iterator[tuple[Chunk | None, list | None, str | None]]:
    """The generator under :func:`run_chunks`: ``(chunk, result, None)`` for a finished chunk,
    ``(chunk, None, reason)`` for a lost one, as they finish.

    ``room()`` False stops new chunks being pulled from ``chunks`` (re-runs still go); while
    nothing is in flight and there is no room, ``(None, None, None)`` is yielded so that the
    consumer can make room (an ordered consumer releasing its buffer).

    The singles of a split chunk run last and one at a time, so that a death is the fault of
    the one molecule running (a process pool cannot tell whose task killed it).
    """
    retry: deque[Chunk] = deque()
    isolated: deque[Chunk] = deque()
    pending: dict[Future, Chunk] = {}
    exhausted = False
    while True:
        while len(pending) < window and (retry or (not exhausted and room())):
            chunk = retry.popleft() if retry else next(chunks, None)
            if chunk is None:
                exhausted = True
                break
            _submit(backend, task, params, chunk, pending)
        if not pending and isolated:
            _submit(backend, task, params, isolated.popleft(), pending)
        if not pending:
            if exhausted:
                return
            yield None, None, None
            continue
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in done:
            chunk = pending.pop(future)
            target = isolated if chunk.isolated else retry
            yield _settle(backend, future, chunk, target, isolated, stats, max_attempts)


def _submit(backend, task, params, chunk: Chunk, pending: dict) -> None:
    try:
        future = backend.executor.submit(task, chunk.records, params)
    except BrokenProcessPool:
        backend.renew()
        future = backend.executor.submit(task, chunk.records, params)
    pending[future] = chunk


def _settle(backend, future: Future, chunk: Chunk, retry: deque, isolated: deque,
            stats: RunStats, max_attempts: int) -> tuple[Chunk | None, list | None, str | None]:
    """The event for a finished future; a death re-queues the chunk (or its singles)."""
    exc = future.exception()
    if exc is None:
        return chunk, future.result(), None
    if not is_worker_death(exc):
        text = str(exc).strip().splitlines()
        return chunk, None, f"task error: {type(exc).__name__}: {text[0] if text else ''}"[:300]
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
        return chunk, None, (f"worker process died while computing this molecule "
                             f"({type(exc).__name__}, {chunk.attempts} runs)")
    return None, None, None
