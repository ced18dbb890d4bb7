"""The label job: conformers in, one store row each out; resumable after a kill at any moment.

It runs on the executor (:mod:`molpre.executor`): the plan is the conformers whose content
key is not stored yet, one conformer per chunk; the run is
:func:`molpre.executor.run_chunks` of :func:`molpre.qc.tasks.conformer_label_task` on a
:class:`~molpre.executor.ProcessBackend`
(one worker process per core, one PySCF thread each by default); this process is the one
writer. Every result is written in its own transaction with its content key, so a SIGKILL
loses at most the conformers in flight, and the next run skips every key already stored.
Failed rows are skipped too unless ``retry_failed`` (e.g. after raising the time limit or
max_cycle), which replaces them. A conformer identical (same key) to one earlier in the same
input is counted as a duplicate and not stored twice.

Time limit: the SCF checks ``level.time_limit_s`` each iteration (a clean error row); a
conformer still running ``kill_grace_s`` after the limit (stuck in grid/DF setup or
gradients) has its workers killed and replaced: it gets a "time limit exceeded" row and the
other conformers in flight are re-run. A conformer whose worker dies (segfault, out of
memory) is re-run, then alone, then becomes a "worker process died" row; the run goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ase import Atoms

from molpre.data.store import NO_FORCES, open_store, stored_keys, write_row
from molpre.executor import Chunk, ProcessBackend, run_chunks
from molpre.qc.content_keys import content_key
from molpre.qc.levels import LevelError, LevelOfTheory
from molpre.qc.pyscf import QCResult
from molpre.qc.tasks import ConformerItem, conformer_label_task

#: Runs of a conformer lost to worker deaths (the second one alone) before its error row.
MAX_ATTEMPTS = 2
#: Modules each worker imports at start, before its first conformer's clock starts.
WARM_IMPORTS = ("pyscf.lib", "pyscf.gto", "pyscf.scf", "pyscf.dft", "molpre.qc.pyscf")


@dataclass
class LabelSummary:
    """Counts of one run: every input conformer is ok, failed, skipped or a duplicate."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.skipped + self.duplicates

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"{self.total} conformers: {self.ok} ok, {self.failed} failed, "
                f"{self.skipped} skipped (already stored), {self.duplicates} duplicates, "
                f"{self.seconds:.1f} s")


def check_threads(workers: int, threads: int, oversubscribe: bool = False) -> None:
    """Raise ValueError if ``workers * threads`` exceeds ``os.cpu_count()`` (unless allowed)."""
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1 (got {workers} x {threads})")
    cores = os.cpu_count() or 1
    if workers * threads > cores and not oversubscribe:
        raise ValueError(f"{workers} workers x {threads} threads = {workers * threads} > "
                         f"{cores} cores; lower them or allow oversubscription (--oversubscribe)")


#: The distribution whose version each engine's labels record.
ENGINE_PACKAGES = {"pyscf": "pyscf", "tblite": "tblite", "rdkit": "rdkit"}


def level_meta(level: LevelOfTheory) -> dict:
    """Key-value pairs naming the level of theory and its engine's version (no import of
    the engine): ``pyscf_version`` for PySCF levels, ``tblite_version``, ``rdkit_version``."""
    package = ENGINE_PACKAGES[level.engine]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "not installed"
    meta = {"method": level.method, "level": level.tag, "engine": level.engine,
            f"{package}_version": version}
    if level.engine == "pyscf":
        meta["basis"] = level.basis
    return meta


def _chunks(frames: Iterable[Atoms], level: LevelOfTheory, done: dict[str, str],
            retry_failed: bool, summary: LabelSummary, tick) -> Iterator[Chunk]:
    """One-conformer chunks still to compute, in input order; counts skips and duplicates."""
    seen: set[str] = set()
    for index, atoms in enumerate(frames):
        key = content_key(atoms, level)
        status = done.get(key)
        if key in seen:
            summary.duplicates += 1
            tick()
        elif status == "ok" or (status == "failed" and not retry_failed):
            summary.skipped += 1
            tick()
        else:
            seen.add(key)
            item = ConformerItem(index, str(atoms.info.get("mol_id", index)), "", atoms, key,
                                 replace=status in ("failed", NO_FORCES))
            yield Chunk(index, [item])


def label_conformers(
    frames: Iterable[Atoms], db_path: str | Path, level: LevelOfTheory, forces: bool = False,
    workers: int = 1, threads: int = 1, *, oversubscribe: bool = False,
    retry_failed: bool = False, progress: bool = False, kill_grace_s: float = 10.0,
) -> LabelSummary:
    """Label ``frames`` (conformers with ``info`` mol_id, conf_id, charge, spin, ...) into a store.

    Args:
        frames: conformers, positions in Angstrom; may be a lazy iterator.
        db_path: ASE database path (SQLite) or URL (PostgreSQL).
        level: level of theory and limits (max_atoms, time_limit_s, max_cycle).
        forces: also store forces (eV/Angstrom).
        workers, threads: processes and threads per process; product <= cores unless
            ``oversubscribe``.
        retry_failed: recompute conformers whose stored row failed (and replace that row).
        progress: show a tqdm progress bar.
        kill_grace_s: seconds past ``level.time_limit_s`` before a running conformer's
            workers are killed.

    Returns:
        LabelSummary with ok/failed/skipped/duplicate counts and wall seconds.

    Raises:
        ValueError: workers x threads over the cores; ``LevelError`` (a ValueError) for an
            unknown method or basis, found by the workers (this process never imports PySCF).
    """
    from tqdm import tqdm

    check_threads(workers, threads, oversubscribe)
    start = time.monotonic()
    db = open_store(db_path)
    meta, summary = level_meta(level), LabelSummary()
    total = len(frames) if hasattr(frames, "__len__") else None
    bar = tqdm(total=total, disable=not progress, unit="conf", desc="label")
    chunks = _chunks(frames, level, stored_keys(db, forces), retry_failed, summary, bar.update)

    def record(item: ConformerItem, result: QCResult) -> None:
        if write_row(db, item.atoms, item.key, result, meta, replace=item.replace) is None:
            summary.skipped += 1  # stored meanwhile by another writer of the same store
        elif result.ok:
            summary.ok += 1
        else:
            summary.failed += 1
        bar.update()
        bar.set_postfix(ok=summary.ok, failed=summary.failed, refresh=False)

    def on_result(chunk: Chunk, results: list[QCResult]) -> None:
        for item, result in zip(chunk.records, results, strict=True):
            record(item, result)

    def on_lost(chunk: Chunk, reason: str) -> None:
        for item in chunk.records:
            record(item, QCResult(ok=False, reason=reason))

    limit = level.time_limit_s
    backend = ProcessBackend(workers, threads, warm=WARM_IMPORTS)
    try:
        run_chunks(backend, conformer_label_task,
                   {"level": level, "forces": forces, "threads": threads}, chunks,
                   on_result, on_lost, max_attempts=MAX_ATTEMPTS, window=workers,
                   fatal=(LevelError,), deadline_s=limit + kill_grace_s if limit else None,
                   limit_label=limit)
    except BaseException:  # Ctrl-C or a bad level: do not wait for conformers in flight
        backend.kill()
        raise
    finally:
        backend.close()  # a pool is started only when there is work (resume is instant)
        bar.close()
    summary.seconds = time.monotonic() - start
    return summary


def compute_conformers(frames: list[Atoms], level: LevelOfTheory, forces: bool = False,
                       workers: int = 1, threads: int = 1) -> list[QCResult]:
    """PySCF results for ``frames`` in input order, without a store (a delta model's cheap
    level at prediction time).

    ``workers`` > 1 runs them on the label runner's process pool (a worker that dies or
    overruns ``level.time_limit_s`` gives that conformer a failed result with the reason);
    ``workers`` = 1 computes them here, one after another.
    """
    from molpre.qc.engines import compute

    if workers <= 1 or len(frames) <= 1:
        return [compute(atoms, level, forces=forces) for atoms in frames]
    results: list[QCResult | None] = [None] * len(frames)
    chunks = (Chunk(i, [ConformerItem(i, str(a.info.get("mol_id", i)), "", a, "")])
              for i, a in enumerate(frames))

    def on_result(chunk: Chunk, out: list[QCResult]) -> None:
        results[chunk.index] = out[0]

    def on_lost(chunk: Chunk, reason: str) -> None:
        results[chunk.index] = QCResult(ok=False, reason=reason)

    limit = level.time_limit_s
    backend = ProcessBackend(min(workers, len(frames)), threads, warm=WARM_IMPORTS)
    try:
        run_chunks(backend, conformer_label_task,
                   {"level": level, "forces": forces, "threads": threads}, chunks,
                   on_result, on_lost, max_attempts=MAX_ATTEMPTS, window=2 * workers,
                   fatal=(LevelError,), deadline_s=limit + 10.0 if limit else None,
                   limit_label=limit)
    except BaseException:
        backend.kill()
        raise
    finally:
        backend.close()
    return [r if r is not None else QCResult(ok=False, reason="no result") for r in results]
