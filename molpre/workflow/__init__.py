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

import importlib

#: public name -> submodule (imported on first use, so a worker process that only needs
#: ``molpre.workflow.run`` does not import RDKit, PySCF or pandas).
_EXPORTS = {
    "SchedulerError": "backends", "connect": "backends", "default_workers": "backends",
    "jobqueue_cluster": "backends", "jobqueue_kwargs": "backends", "local_cluster": "backends",
    "JobSummary": "jobs", "run_job": "jobs", "Ledger": "ledger", "ledger_path": "ledger",
    "Chunk": "run", "make_plan": "plan", "DaskBackend": "run", "ProcessBackend": "run",
    "run_chunks": "run", "ClusterProfile": "spec", "JobSpec": "spec", "SpecError": "spec",
    "load_job": "spec", "load_profile": "spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'molpre.workflow' has no attribute {name!r}")
    return getattr(importlib.import_module(f"molpre.workflow.{_EXPORTS[name]}"), name)
