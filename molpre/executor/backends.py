"""Where tasks run: a local process pool, a local Dask cluster, an existing scheduler, or a
dask-jobqueue cluster. Every backend has ``submit(task, records, params) -> Future`` and
``renew()`` (after a broken pool); :class:`ProcessBackend` also reports when each task
started (``started_at``) and can ``kill()`` its workers, which per-task deadlines need.

* :class:`ProcessBackend`: a ``ProcessPoolExecutor`` (forkserver) renewed after it breaks;
  each worker runs ``threads`` OpenMP/BLAS threads and exits when its parent is killed; no
  worker imports the user's ``__main__`` (molpre.executor.processes), so a script without
  an ``if __name__ == "__main__":`` guard runs once.
* :class:`DaskBackend`: a Dask ``Client``'s executor;
  ``local_cluster(workers, threads)``: ``distributed.LocalCluster`` bound to 127.0.0.1 with
  ``workers`` processes of one Dask thread and ``threads`` OpenMP/BLAS threads each
  (by default ``workers x threads = cores``); ``connect(address)``: a ``Client`` for
  ``tcp://host:port`` (SchedulerError within ``timeout_s``); ``jobqueue_cluster(kind,
  kwargs, workers)``: SLURM or PBS through dask-jobqueue (the ``cluster`` extra).

Our own clusters set ``distributed.scheduler.allowed-failures`` to 0, so a worker death
reaches :func:`molpre.executor.run_chunks` at once and its bounded re-run / split rule
applies. Nothing here knows what a task computes.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import pickle
import queue
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from molpre.executor.processes import forkserver_context
from molpre.runtime import exit_with_parent

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SchedulerError(RuntimeError):
    """A scheduler that cannot be reached or a cluster that cannot be started."""


def default_workers(threads: int = 1) -> int:
    """Worker processes so that workers x threads = the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, threads))


def thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in THREAD_VARS}


def local_cluster(workers: int | None = None, threads: int = 1):
    """``(client, cluster)`` for a LocalCluster on 127.0.0.1 (no dashboard)."""
    import dask
    from distributed import Client, LocalCluster

    workers = workers or default_workers(threads)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.nanny.pre-spawn-environ": thread_env(threads)}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=logging.CRITICAL, env=thread_env(threads))
        client = Client(cluster)
    return client, cluster


def connect(address: str, timeout_s: float = 5.0):
    """A Client for a running scheduler; SchedulerError if it does not answer in time."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as err:
        raise SchedulerError(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s ({err}); "
            "check that it is running and the address is tcp://host:port") from None


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
            context = forkserver_context(self.preload)
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
        """The chunk goes to the scheduler as one pickled blob: handed over as live Python
        objects (records holding RDKit molecules), every chunk of 256 records left about
        6 MB behind in the submitting process (measured: 259 -> 702 MB over 70 chunks; as
        a blob, flat), which a million-molecule job cannot afford."""
        return self.executor.submit(call_pickled, pickle.dumps((task, records, params),
                                                               protocol=5))

    def renew(self) -> None:
        """Nothing to do: Dask replaces dead workers itself."""

    def close(self) -> None:
        """The client's owner closes it."""


def call_pickled(blob: bytes):
    """Run ``task(records, params)`` from a :meth:`DaskBackend.submit` blob (on a worker)."""
    task, records, params = pickle.loads(blob)
    return task(records, params)


def set_threads(threads: int) -> None:
    """OpenMP/BLAS thread counts of this process (before numpy/PySCF is imported, ideally)."""
    os.environ.update(thread_env(threads))


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


def jobqueue_cluster(kind: str, kwargs: dict, workers: int | None = None):
    """A dask-jobqueue cluster (``kind`` slurm or pbs) built from ``kwargs``, scaled to
    ``workers`` worker processes when given."""
    try:
        import dask_jobqueue
    except ImportError:
        raise SchedulerError("cluster profiles need dask-jobqueue: "
                             "pip install 'molpre[cluster]'") from None
    classes = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}
    if kind not in classes:
        raise SchedulerError(f"unknown jobqueue kind {kind!r}; use one of {sorted(classes)}")
    cluster = classes[kind](**kwargs)
    if workers:
        cluster.scale(n=workers)
    return cluster
