"""Conformers for a stream of records: in order, in bounded memory, across processes.

``conformer_stream`` keeps at most ``window`` records in flight, so memory does not grow with
the input (``Pool.imap`` would read the whole input ahead). The default, 16 per worker, lets
the other workers keep going while one slow molecule holds the head of the ordered output. Worker
processes come from a ``forkserver`` context (safe when the parent holds threads: tqdm, torch)
and run one thread each; only results travel back, records stay in the parent. With
``workers=1`` everything runs in-process. Error records pass straight through, in order.

A worker that dies (segfault, out of memory) turns the records in flight into error rows and
the pool is restarted, so no row is lost and the run goes on. Workers exit on their own when
the parent process is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ase import Atoms

from molpre.chem.conformers import ConformerConfig, ConformerError, embed_conformers
from molpre.chem.molecules import MoleculeRecord

#: Records kept in flight per worker process (a few kB each; bounds memory and head-of-line stalls).
WINDOW_PER_WORKER = 16
#: Consecutive pool deaths with no finished molecule before the stream gives up.
MAX_RESTARTS_WITHOUT_RESULT = 3
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class ConformerOutcome:
    """The result for one record: conformers (ok) or an error reason, never both empty."""

    record: MoleculeRecord
    conformers: list[Atoms] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _work(record: MoleculeRecord, n: int, seed: int,
          config: ConformerConfig | None) -> tuple[list[Atoms], str | None]:
    """Conformers or a reason for one ok record; catches everything so a row is never lost."""
    try:
        return embed_conformers(record, n=n, seed=seed, config=config), None
    except ConformerError as exc:
        return [], str(exc)
    except Exception as exc:  # an RDKit/ASE bug on one molecule must not end the run
        return [], f"unexpected {type(exc).__name__}: {exc}"


def _init_worker(parent_pid: int) -> None:
    """One compute thread per worker, and exit when the parent process is gone (killed)."""
    for name in _THREAD_VARS:
        os.environ[name] = "1"
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """Poll the parent; an orphaned worker would otherwise wait on its queue forever."""
    while True:
        time.sleep(every_s)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid exists (reused by another user): keep going
            continue


class _Pool:
    """A process pool that restarts itself after a worker death (generation counts restarts)."""

    def __init__(self, workers: int) -> None:
        self.workers, self.generation, self.failed_starts = workers, 0, 0
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["molpre.chem.stream"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                   initializer=_init_worker, initargs=(os.getpid(),))

    def restart(self) -> None:
        """Replace a broken pool; raise when pools keep dying with nothing finished."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.failed_starts += 1
        if self.failed_starts > MAX_RESTARTS_WITHOUT_RESULT:
            raise RuntimeError(
                "conformer worker processes keep dying before finishing any molecule; in a "
                "script, call conformer_stream under `if __name__ == '__main__':`")
        self.executor, self.generation = self._start(), self.generation + 1

    def submit(self, *args) -> tuple[Future, int]:
        try:
            return self.executor.submit(_work, *args), self.generation
        except BrokenProcessPool:
            self.restart()
            return self.executor.submit(_work, *args), self.generation

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _outcome(record: MoleculeRecord, item: Future | tuple) -> ConformerOutcome:
    if isinstance(item, Future):
        try:
            item = item.result()
        except BrokenProcessPool:
            item = ([], "worker process died while embedding (crash or out of memory)")
    conformers, error = item
    return ConformerOutcome(record=record, conformers=conformers, error=error)


def conformer_stream(records: Iterable[MoleculeRecord], n: int = 4, seed: int = 0,
                     workers: int = 1, config: ConformerConfig | None = None,
                     window: int | None = None) -> Iterator[ConformerOutcome]:
    """One ConformerOutcome per record, in input order (``workers=0``: one per CPU)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        for record in records:
            error_row = ([], record.error or "record has no molecule")
            yield _outcome(record, _work(record, n, seed, config) if record.ok else error_row)
        return
    yield from _parallel(iter(records), n, seed, workers, config,
                         window or WINDOW_PER_WORKER * workers)


def _parallel(records: Iterator[MoleculeRecord], n: int, seed: int, workers: int,
              config: ConformerConfig | None, window: int) -> Iterator[ConformerOutcome]:
    pending: deque[tuple[MoleculeRecord, Future | tuple, int]] = deque()
    pool = _Pool(workers)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                record = next(records, None)
                if record is None:
                    exhausted = True
                elif record.ok:
                    pending.append((record, *pool.submit(record, n, seed, config)))
                else:
                    pending.append((record, ([], record.error or "record has no molecule"), -1))
            if not pending:
                return
            record, item, generation = pending.popleft()
            outcome = _outcome(record, item)
            if _broken(item):
                if generation == pool.generation:
                    pool.restart()
            elif generation >= 0:
                pool.failed_starts = 0  # a worker finished a molecule: the pool is healthy
            yield outcome
    finally:
        pool.close()


def _broken(item: Future | tuple) -> bool:
    return (isinstance(item, Future) and item.done()
            and isinstance(item.exception(), BrokenProcessPool))
