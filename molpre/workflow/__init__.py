"""Batch jobs on one seam: plan (key, skip done, chunk) -> run (pure tasks on the executor,
molpre.executor) -> write (one writer, a ledger as the record of progress).

Public API::

    load_job(path) -> JobSpec                     job spec YAML, unknown keys rejected
    load_profile(path) -> ClusterProfile          dask-jobqueue profile (slurm, pbs)
    local_cluster(workers, threads) -> (client, cluster)   LocalCluster on 127.0.0.1
    connect(address, timeout_s) -> Client          SchedulerError if it does not answer
    DaskBackend(client) | ProcessBackend(workers, threads) the executors tasks run on
    run_job(spec, input, out, backend) -> JobSummary       resumable, one row per input row
    run_chunks(backend, task, params, chunks, on_result, on_lost)  the retry/split core
"""

import importlib

#: public name -> module (imported on first use, so a worker process does not import RDKit,
#: PySCF or pandas for nothing).
_EXPORTS = {
    "SchedulerError": "molpre.executor", "connect": "molpre.executor",
    "default_workers": "molpre.executor", "local_cluster": "molpre.executor",
    "jobqueue_cluster": "molpre.workflow.backends", "jobqueue_kwargs": "molpre.workflow.backends",
    "JobSummary": "molpre.workflow.jobs", "run_job": "molpre.workflow.jobs",
    "Ledger": "molpre.workflow.ledger", "ledger_path": "molpre.workflow.ledger",
    "Chunk": "molpre.executor", "make_plan": "molpre.workflow.plan",
    "DaskBackend": "molpre.executor", "ProcessBackend": "molpre.executor",
    "run_chunks": "molpre.executor", "ClusterProfile": "molpre.workflow.spec",
    "JobSpec": "molpre.workflow.spec", "SpecError": "molpre.workflow.spec",
    "load_job": "molpre.workflow.spec", "load_profile": "molpre.workflow.spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'molpre.workflow' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
