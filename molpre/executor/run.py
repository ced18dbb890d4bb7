"""Run chunks of pure tasks on any backend, with bounded retries, splits and deadlines.

``run_chunks`` keeps at most ``window`` chunks in flight, hands each finished chunk's results
to ``on_result`` (the single writer, in this process) and handles worker deaths:

* a chunk whose worker died (``BrokenProcessPool`` from a process pool, ``KilledWorker`` from
  Dask, or a lost connection) is re-run up to ``max_attempts`` times;
* after that it is split into single records, run last and one at a time, each up to
  ``max_attempts`` times (alone, a death is that record's fault);
* a single record that still kills its worker ends as ``on_lost`` and the rest goes on.

An ordinary exception raised by a task (a bug, not a death) loses that chunk with the
exception as the reason, unless its type is in ``fatal``: then it is raised here and the
run stops.

Per-task wall-clock limit (``deadline_s``, backends that report task starts and can kill:
:class:`~molpre.executor.backends.ProcessBackend`): a task still running ``deadline_s``
after its start has its pool killed (a stuck task may be outside any loop that could check
a clock), its chunk is lost with "time limit exceeded" (never re-run), and the other chunks
that were in flight are re-run without counting it against them.

:func:`map_calls` is the one-record-per-chunk form: ``fn(item)`` for each item.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from molpre.errors import first_line
from molpre.executor.chunks import Chunk

#: Exception type names that mean "the worker running this died", whatever the backend.
DEATH_TYPES = ("BrokenProcessPool", "KilledWorker", "CommClosedError", "FutureCancelledError")


def is_worker_death(exc: BaseException) -> bool:
    """True for exceptions that mean the task's worker process died (not a task error)."""
    return type(exc).__name__ in DEATH_TYPES


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
        return chunk, None, (f"worker process died while running this record "
                             f"({type(exc).__name__}, {chunk.attempts} runs)")
    return None, None, None


def call_each(items: list, params: dict) -> list:
    """The task of :func:`map_calls`: ``params["fn"](item)`` for each item."""
    return [params["fn"](item) for item in items]


def map_calls(backend, fn: Callable[[Any], Any], items: Iterable[Any], *,
              max_attempts: int = 2, window: int = 8, deadline_s: float | None = None
              ) -> Iterator[tuple[int, Any, str | None]]:
    """``(index, fn(item), None)`` or ``(index, None, reason)`` for each of ``items`` as
    they finish, each its own chunk (``fn`` a picklable top-level function); the retries,
    splits and deadline of :func:`iter_chunk_results` apply to each call."""
    chunks = (Chunk(i, [item]) for i, item in enumerate(items))
    for chunk, result, reason in iter_chunk_results(
            backend, call_each, {"fn": fn}, chunks, RunStats(), max_attempts=max_attempts,
            window=window, deadline_s=deadline_s):
        if chunk is not None:
            yield chunk.index, (result[0] if reason is None else None), reason
