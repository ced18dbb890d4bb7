"""Conformers for a stream of records: in order, in bounded memory, across processes.

``conformer_stream`` runs on the executor (:mod:`molpre.executor`): each ok record is a
one-molecule task on a :class:`~molpre.executor.ProcessBackend` (a ``forkserver``
process pool, one thread per worker, workers exit on their own when the parent is killed).
At most ``window`` records are read ahead of the output (default 16 per worker), so memory
does not grow with the input while the other workers keep going past one slow molecule. With
``workers=1`` everything runs in-process. Error records pass straight through, in order.
``after`` (a picklable callable) runs on each molecule's conformers where they were made, in
the worker: a delta model's cheap level is computed there, in parallel with the embedding.

A worker that dies (segfault, out of memory) has its molecules re-run; a molecule that keeps
killing its worker, run alone, becomes an error row ("worker process died ...") and the run
goes on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ase import Atoms

from molpre.chem.conformers import ConformerConfig, ConformerError, embed_conformers
from molpre.chem.molecules import MoleculeRecord

#: Records kept in flight per worker process (a few kB each; bounds memory and head-of-line stalls).
WINDOW_PER_WORKER = 16
#: Runs of a molecule lost to worker deaths (with others, then alone) before its error row.
MAX_ATTEMPTS = 2


@dataclass
class ConformerOutcome:
    """The result for one record: conformers (ok) or an error reason, never both empty."""

    record: MoleculeRecord
    conformers: list[Atoms] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: What runs on a molecule's conformers where they were made (it may add to ``atoms.info``).
AfterHook = Callable[[list[Atoms]], None]


def _work(record: MoleculeRecord, n: int, seed: int, config: ConformerConfig | None,
          after: AfterHook | None = None) -> tuple[list[Atoms], str | None]:
    """Conformers or a reason for one ok record; catches everything so a row is never lost."""
    try:
        conformers = embed_conformers(record, n=n, seed=seed, config=config)
    except ConformerError as exc:
        return [], str(exc)
    except Exception as exc:  # an RDKit/ASE bug on one molecule must not end the run
        return [], f"unexpected {type(exc).__name__}: {exc}"
    if after is not None:
        try:
            after(conformers)
        except Exception as exc:
            return [], f"after conformer generation: {type(exc).__name__}: {exc}"
    return conformers, None


def _work_chunk(records: list[MoleculeRecord], params: dict) -> list[tuple[list[Atoms], str | None]]:
    """The seam's task: ``_work`` for each record of a chunk."""
    return [_work(r, params["n"], params["seed"], params["config"], params.get("after"))
            for r in records]


def conformer_stream(records: Iterable[MoleculeRecord], n: int = 4, seed: int = 0,
                     workers: int = 1, config: ConformerConfig | None = None,
                     window: int | None = None,
                     after: AfterHook | None = None) -> Iterator[ConformerOutcome]:
    """One ConformerOutcome per record, in input order (``workers=0``: one per CPU).

    ``after(conformers)`` runs on each molecule's conformers in the process that made them
    (picklable when ``workers`` > 1); if it raises, that molecule is an error row."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        for record in records:
            error = record.error or "record has no molecule"
            conformers, error = _work(record, n, seed, config, after) if record.ok else ([], error)
            yield ConformerOutcome(record=record, conformers=conformers, error=error)
        return
    yield from _parallel(iter(records), {"n": n, "seed": seed, "config": config, "after": after},
                         workers, window or WINDOW_PER_WORKER * workers)


def _parallel(records: Iterator[MoleculeRecord], params: dict, workers: int,
              window: int) -> Iterator[ConformerOutcome]:
    from molpre.executor import Chunk, ProcessBackend, RunStats, iter_chunk_results

    order: deque[int] = deque()  # sequence numbers read and not yet yielded, in input order
    ready: dict[int, ConformerOutcome] = {}

    def chunks() -> Iterator[Chunk]:
        for seq, record in enumerate(records):
            order.append(seq)
            if record.ok:
                yield Chunk(seq, [record])
            else:
                ready[seq] = ConformerOutcome(record, error=record.error or "record has no molecule")

    backend = ProcessBackend(workers, threads=1, preload=("molpre.chem.stream",))
    events = iter_chunk_results(backend, _work_chunk, params, chunks(), RunStats(),
                                max_attempts=MAX_ATTEMPTS, window=window,
                                room=lambda: len(order) < window)
    try:
        for chunk, result, reason in events:
            if chunk is not None:
                record = chunk.records[0]
                conformers, error = result[0] if reason is None else ([], reason)
                ready[chunk.index] = ConformerOutcome(record, conformers, error)
            while order and order[0] in ready:
                yield ready.pop(order.popleft())
        while order and order[0] in ready:
            yield ready.pop(order.popleft())
    finally:
        events.close()
        backend.close()
