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
error rows with the exception as the reason, unless its type is in ``fatal`` (e.g. a bad
level of theory): then it is raised here and the run stops.

Per-task wall-clock limit (``deadline_s``, :class:`ProcessBackend` only): each worker
reports when it starts a task; a task still running ``deadline_s`` later has its pool killed
(a stuck task may be outside any loop that could check a clock), its chunk becomes an error
row "time limit exceeded" (never re-run), and the other chunks that were in flight are
re-run without counting it against them. With one-molecule chunks the limit is per molecule.

Backends: :class:`ProcessBackend` (a local ``ProcessPoolExecutor``, renewed after it breaks)
and :class:`DaskBackend` (``Client.get_executor()``).
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import os
import queue
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from molpre.errors import first_line
from molpre.runtime import exit_with_parent

#: Exception type names that mean "the worker running this died", whatever the backend.
DEATH_TYPES = ("BrokenProcessPool", "KilledWorker", "CommClosedError", "FutureCancelledError")


def is_worker_death(exc: BaseException) -> bool:
    """True for exceptions that mean the task's worker process died (not a task error)."""
    return type(exc).__name__ in DEATH_TYPES


@dataclass
class Chunk:
    """Records sent to one task; ``attempts`` counts runs lost to a dead worker.

    ``records`` are intake records (:class:`molpre.chem.MoleculeRecord`) or any objects with
    ``row``, ``mol_id`` and ``input`` (the label runner's conformers).
    """

    index: int
    records: list[Any]
    attempts: int = 0
    isolated: bool = False

    @property
    def rows(self) -> list[int]:
        return [r.row for r in self.records]

    def split(self) -> list[Chunk]:
        """One single-record chunk per record (for a chunk that keeps killing workers)."""
        return [Chunk(self.index, [r], isolated=True) for r in self.records]


class ProcessBackend:
    """A local ``ProcessPoolExecutor`` (forkserver), renewed when broken.

    Each worker runs ``threads`` OpenMP/BLAS threads and exits on its own when this process
    is killed (an orphaned pool worker would otherwise wait on its queue forever).
    ``preload``: modules the forkserver imports once, so that each worker starts fast.
    ``warm``: modules each worker imports at start, after its thread variables are set
    (PySCF: its import then is not counted against a task's time limit).

    Tasks go through :meth:`submit`, which wraps them so that the worker reports when it
    starts each one (:meth:`started_at`); :meth:`kill` ends every worker at once.
    """

    name = "processes"

    def __init__(self, workers: int, threads: int = 1, preload: tuple[str, ...] = (),
                 warm: tuple[str, ...] = ()) -> None:
        self.workers, self.threads, self.preload = workers, threads, list(preload)
        self.warm = tuple(warm)
        self._executor: ProcessPoolExecutor | None = None
        self._notices = None
        self._tokens: dict[Future, int] = {}
        self._live: set[int] = set()
        self._starts: dict[int, float] = {}
        self._counter = itertools.count()

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            if self.preload:
                context.set_forkserver_preload(self.preload)
            self._notices = context.Queue()
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=init_worker,
                initargs=(self.threads, os.getpid(), self._notices, self.warm, molpre_env()))
        return self._executor

    def submit(self, task: Callable, records: list, params: dict) -> Future:
        """``task(records, params)`` in a worker, which reports its start time."""
        token = next(self._counter)
        future = self.executor.submit(noticed_call, task, records, params, token)
        self._tokens[future] = token
        self._live.add(token)
        return future

    def started_at(self, future: Future) -> float | None:
        """``time.monotonic()`` at which a worker started ``future``'s task (None: not yet)."""
        self._drain()
        return self._starts.get(self._tokens.get(future, -1))

    def forget(self, future: Future) -> None:
        """Drop a settled future's bookkeeping (and read the notices, so their pipe stays
        empty)."""
        self._drain()
        token = self._tokens.pop(future, -1)
        self._live.discard(token)
        self._starts.pop(token, None)

    def _drain(self) -> None:
        while self._notices is not None:
            try:
                token, started = self._notices.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError):
                return
            if token in self._live:  # a notice read after its result is dropped
                self._starts[token] = started

    def kill(self) -> None:
        """SIGKILL every worker (a task over its time limit) and drop the pool."""
        if self._executor is None:
            return
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join(timeout=5)
        self.renew()

    def renew(self) -> None:
        """Drop a broken pool; the next ``executor`` starts a fresh one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        if self._notices is not None:  # a killed worker may have held its lock: a fresh queue
            self._notices.close()
            self._notices.cancel_join_thread()
        self._notices, self._tokens, self._starts, self._live = None, {}, {}, set()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._notices is not None:
            self._notices.close()
            self._notices = None


class DaskBackend:
    """A Dask ``Client``'s executor (``pure=False``: a re-run is a new task)."""

    name = "dask"

    def __init__(self, client) -> None:
        self.client = client
        self.executor = client.get_executor(pure=False)

    def submit(self, task: Callable, records: list, params: dict) -> Future:
        return self.executor.submit(task, records, params)

    def renew(self) -> None:
        """Nothing to do: Dask replaces dead workers itself."""

    def close(self) -> None:
        """The client's owner closes it."""


def set_threads(threads: int) -> None:
    """OpenMP/BLAS thread counts of this process (before numpy/PySCF is imported, ideally)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


#: In a pool worker: the queue on which it reports task starts (set by ``init_worker``).
_NOTICES = None


def molpre_env() -> dict[str, str]:
    """This process's ``MOLPRE_*`` variables (a forkserver started earlier lacks later ones)."""
    return {k: v for k, v in os.environ.items() if k.startswith("MOLPRE_")}


def init_worker(threads: int, parent_pid: int, notices=None, warm: tuple[str, ...] = (),
                env: dict[str, str] | None = None) -> None:
    """Pool worker start: the parent's ``MOLPRE_*`` variables, thread counts, a watchdog that
    exits when the parent is gone, the start-notice queue, and the ``warm`` imports."""
    global _NOTICES
    for name in [k for k in os.environ if k.startswith("MOLPRE_")]:
        if name not in (env or {}):
            del os.environ[name]
    os.environ.update(env or {})
    set_threads(threads)
    _NOTICES = notices
    if notices is not None:
        notices.cancel_join_thread()  # never block this worker's exit on unread notices
    exit_with_parent(parent_pid)
    for name in warm:
        importlib.import_module(name)


def noticed_call(task: Callable, records: list, params: dict, token: int):
    """In a worker: report ``(token, monotonic start)`` to the parent, then run the task."""
    if _NOTICES is not None:
        _NOTICES.put((token, time.monotonic()))
    return task(records, params)


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
               window: int = 8, fatal: tuple[type[BaseException], ...] = (),
               deadline_s: float | None = None, limit_label: float | None = None) -> RunStats:
    """Run ``task(chunk.records, params) -> list`` for every chunk; see the module docstring.

    Args:
        backend: has ``submit(task, records, params)`` and ``renew()`` (after a broken pool);
            for ``deadline_s`` also ``started_at(future)`` and ``kill()``.
        on_result: called with (chunk, task's return value) in this process, as chunks finish.
        on_lost: called with (chunk, reason) for chunks that end without a result.
        max_attempts: runs of a chunk lost to worker deaths before it is split (and of each
            single molecule of a split chunk before it becomes an error row).
        window: chunks in flight at most (bounds memory for large inputs).
        fatal: task exception types that stop the run (raised here) instead of error rows.
        deadline_s: wall-clock seconds a task may run (from its start in a worker).
        limit_label: the limit named in the error row (default ``deadline_s``).
    """
    stats = RunStats()
    for chunk, result, reason in iter_chunk_results(
            backend, task, params, chunks, stats, max_attempts=max_attempts, window=window,
            fatal=fatal, deadline_s=deadline_s, limit_label=limit_label):
        if chunk is None:
            continue
        if reason is None:
            on_result(chunk, result)
        else:
            on_lost(chunk, reason)
    return stats


def iter_chunk_results(backend, task: Callable, params: dict, chunks: Iterator[Chunk],
                       stats: RunStats, *, max_attempts: int = 2, window: int = 8,
                       room: Callable[[], bool] = lambda: True,
                       fatal: tuple[type[BaseException], ...] = (),
                       deadline_s: float | None = None, limit_label: float | None = None
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
        timeout = _poll_s(backend, pending, deadline_s)
        done, _ = wait(list(pending), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            chunk = pending.pop(future)
            _forget(backend, future)
            target = isolated if chunk.isolated else retry
            yield _settle(backend, future, chunk, target, isolated, stats, max_attempts, fatal)
        if deadline_s is not None:
            yield from _overdue(backend, pending, retry, isolated, deadline_s,
                                limit_label if limit_label is not None else deadline_s)


def _poll_s(backend, pending: dict, deadline_s: float | None) -> float | None:
    """How long to wait for a result: until the first deadline (or a short poll while a
    task has not reported its start yet); None without a deadline."""
    if deadline_s is None:
        return None
    starts = [backend.started_at(f) for f in pending]
    known = [s + deadline_s - time.monotonic() for s in starts if s is not None]
    soonest = min(known) if known else deadline_s
    if len(known) < len(starts):
        soonest = min(soonest, 0.2)
    return max(0.0, soonest)


def _overdue(backend, pending: dict, retry: deque, isolated: deque, deadline_s: float,
             limit_label: float) -> Iterator[tuple[Chunk, None, str]]:
    """Kill the pool if a task is past its deadline: its chunk is an error row, the other
    chunks in flight go back to the front of their queue (no attempt counted)."""
    now = time.monotonic()
    late = {f: now - s for f in pending
            if (s := backend.started_at(f)) is not None and now - s >= deadline_s}
    if not late:
        return
    backend.kill()
    for future, chunk in list(pending.items()):
        pending.pop(future)
        if future in late:
            yield chunk, None, (f"time limit exceeded ({limit_label:g} s; worker killed after "
                                f"{late[future]:.1f} s)")
        else:
            (isolated if chunk.isolated else retry).appendleft(chunk)


def _forget(backend, future: Future) -> None:
    forget = getattr(backend, "forget", None)
    if forget is not None:
        forget(future)


def _submit(backend, task, params, chunk: Chunk, pending: dict) -> None:
    try:
        future = backend.submit(task, chunk.records, params)
    except BrokenProcessPool:
        backend.renew()
        future = backend.submit(task, chunk.records, params)
    pending[future] = chunk


def _settle(backend, future: Future, chunk: Chunk, retry: deque, isolated: deque,
            stats: RunStats, max_attempts: int, fatal: tuple = ()
            ) -> tuple[Chunk | None, list | None, str | None]:
    """The event for a finished future; a death re-queues the chunk (or its singles)."""
    exc = future.exception()
    if exc is None:
        return chunk, future.result(), None
    if fatal and isinstance(exc, fatal):
        raise exc
    if not is_worker_death(exc):
        return chunk, None, f"task error: {type(exc).__name__}: {first_line(exc)}"[:300]
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
