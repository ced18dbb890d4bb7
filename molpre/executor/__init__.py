"""The executor: where and how pure tasks run, below every domain package.

It knows chunks, backends, retries, splits and deadlines, and nothing of what a task
computes: it imports no molpre package but ``molpre.errors`` and ``molpre.runtime`` (a test
reads its imports). Tasks live with their domains (conformers in molpre.chem.stream, PySCF
labels in molpre.qc.tasks, batch jobs in molpre.workflow.tasks, study children in
molpre.study.children) and are handed to it.

Public API::

    Chunk(index, records)                         the unit of work
    ProcessBackend(workers, threads) | DaskBackend(client)   where tasks run
    local_cluster(workers, threads) -> (client, cluster); connect(address); jobqueue_cluster
    run_chunks(backend, task, params, chunks, on_result, on_lost, max_attempts, deadline_s)
    iter_chunk_results(...)                        the generator under run_chunks
    map_calls(backend, fn, items, deadline_s=...)  one call per item, with the same rules
"""

from molpre.executor.backends import (
    THREAD_VARS,
    DaskBackend,
    ProcessBackend,
    SchedulerError,
    connect,
    default_workers,
    init_worker,
    jobqueue_cluster,
    local_cluster,
    molpre_env,
    noticed_call,
    set_threads,
    thread_env,
)
from molpre.executor.chunks import Chunk
from molpre.executor.run import (
    DEATH_TYPES,
    RunStats,
    call_each,
    is_worker_death,
    iter_chunk_results,
    map_calls,
    run_chunks,
)

__all__ = ["DEATH_TYPES", "THREAD_VARS", "Chunk", "DaskBackend", "ProcessBackend", "RunStats",
           "SchedulerError", "call_each", "connect", "default_workers", "init_worker",
           "is_worker_death", "iter_chunk_results", "jobqueue_cluster", "local_cluster",
           "map_calls", "molpre_env", "noticed_call", "run_chunks", "set_threads", "thread_env"]
