"""Cluster profiles for batch jobs: a :class:`~molpre.workflow.spec.ClusterProfile` as
dask-jobqueue arguments. The backends themselves (local process pool, LocalCluster, an
existing scheduler, jobqueue) live in :mod:`molpre.executor`, re-exported here.
"""

from __future__ import annotations

from molpre.executor import (
    THREAD_VARS,
    SchedulerError,
    connect,
    default_workers,
    local_cluster,
    thread_env,
)
from molpre.executor import jobqueue_cluster as _jobqueue_cluster
from molpre.workflow.spec import ClusterProfile

__all__ = ["SchedulerError", "connect", "default_workers", "jobqueue_cluster",
           "jobqueue_kwargs", "local_cluster", "thread_env"]


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
    """A dask-jobqueue cluster object for ``profile`` (scaled to ``profile.workers`` worker
    processes unless ``scale`` is False)."""
    return _jobqueue_cluster(profile.kind, jobqueue_kwargs(profile),
                             profile.workers if scale else None)
