"""Batch jobs on one seam: plan (key, skip done, chunk) -> run (pure tasks on any executor)
-> write (one writer, a ledger as the record of progress).

Public API::

    load_job(path) -> JobSpec                     job spec YAML, unknown keys rejected
    load_profile(path) -> ClusterProfile          dask-jobqueue profile (slurm, pbs)
    local_cluster(workers, threads) -> (client, cluster)   LocalCluster on 127.0.0.1
    connect(address, timeout_s) -> Client          SchedulerError if it does not answer
    DaskBackend(client) | ProcessBackend(workers, threads) the executors tasks run on
    run_job(spec, input, out, backend) -> JobSummary       resumable, one row per input row
    run_chunks(backend, task, params, chunks, on_result, on_lost)  the retry/split core
"""

from molpre.workflow.backends import (
    SchedulerError,
    connect,
    default_workers,
    jobqueue_cluster,
    jobqueue_kwargs,
    local_cluster,
)
from molpre.workflow.jobs import JobSummary, run_job
from molpre.workflow.ledger import Ledger, ledger_path
from molpre.workflow.plan import Chunk, make_plan
from molpre.workflow.run import DaskBackend, ProcessBackend, run_chunks
from molpre.workflow.spec import ClusterProfile, JobSpec, SpecError, load_job, load_profile

__all__ = [
    "Chunk", "ClusterProfile", "DaskBackend", "JobSpec", "JobSummary", "Ledger",
    "ProcessBackend", "SchedulerError", "SpecError", "connect", "default_workers",
    "jobqueue_cluster", "jobqueue_kwargs", "ledger_path", "load_job", "load_profile",
    "local_cluster", "make_plan", "run_chunks", "run_job",
]
