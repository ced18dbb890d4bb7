"""Where tasks run: a local Dask cluster, an existing scheduler, or a dask-jobqueue profile.

* ``local_cluster(workers, threads)``: ``distributed.LocalCluster`` bound to 127.0.0.1 with
  ``workers`` processes of one Dask thread and ``threads`` OpenMP/BLAS (PySCF) threads each;
  by default ``workers x threads = cores``.
* ``connect(address)``: a ``Client`` for ``tcp://host:port``; an address that does not answer
  raises :class:`SchedulerError` within ``timeout_s`` seconds.
* ``jobqueue_cluster(profile)``: SLURM or PBS through dask-jobqueue (the ``cluster`` extra).

Our own clusters set ``distributed.scheduler.allowed-failures`` to 0, so a worker death reaches
:func:`molpre.workflow.run.run_chunks` at once and its bounded re-run / split rule applies.
"""

from __future__ import annotations

import logging
import os

from molpre.workflow.spec import ClusterProfile

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


def jobqueue_kwargs(profile: ClusterProfile) -> dict:
    """Keyword arguments for ``dask_jobqueue.SLURMCluster``/``PBSCluster`` from a profile."""
    threads = profile.cores // profile.processes
    prologue = [f"export {name}={threads}" for name in THREAD_VARS]
    kwargs = dict(cores=profile.cores, processes=profile.processes, memory=profile.memory,
                  walltime=profile.walltime,
                  job_extra_directives=list(profile.job_extra_directives),
                  job_script_prologue=prologue + list(profile.job_script_prologue),
                  worker_extra_args=["--nthreads", "1"])
    if profile.queue:
        kwargs["queue"] = profile.queue
    if profile.account:
        kwargs["account"] = profile.account
    if profile.local_directory:
        kwargs["local_directory"] = profile.local_directory
    return kwargs


def jobqueue_cluster(profile: ClusterProfile, scale: bool = True):
    """A dask-jobqueue cluster object (scaled to ``profile.workers`` worker processes)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise SchedulerError("cluster profiles need dask-jobqueue: "
                             "pip install 'molpre[cluster]'") from None
    cls = dask_jobqueue.SLURMCluster if profile.kind == "slurm" else dask_jobqueue.PBSCluster
    cluster = cls(**jobqueue_kwargs(profile))
    if scale:
        cluster.scale(n=profile.workers)
    return cluster
