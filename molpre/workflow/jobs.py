"""A batch job end to end: plan -> run on a backend -> one writer; progress, summary, manifest.

    from molpre.workflow import load_job, run_job, local_cluster, DaskBackend
    client, cluster = local_cluster(workers=2)
    summary = run_job(load_job("workflows/label.yaml"), "mols.smi", "labels.db",
                      DaskBackend(client))
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from molpre.executor import run_chunks
from molpre.workflow.ledger import Ledger, LedgerRow, exclusive, ledger_path, lock_path
from molpre.workflow.plan import Chunk, count_rows, make_plan
from molpre.workflow.spec import JobSpec
from molpre.workflow.tasks import (
    Outcome,
    corpus_task,
    fragments_task,
    label_task,
    predict_task,
)


@dataclass
class JobSummary:
    """Counts and timings of one submit (``ok + errors`` = rows recorded by this run)."""

    job_id: str
    kind: str
    input_sha256: str
    scheduler: str
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    chunks: int = 0
    seconds: float = 0.0
    deaths: int = 0
    reruns: int = 0
    splits: int = 0
    lost: int = 0
    output: dict = field(default_factory=dict)

    @property
    def computed(self) -> int:
        return self.ok + self.errors

    def line(self) -> str:
        rate = self.computed / self.seconds if self.seconds else 0.0
        return (f"job {self.job_id} ({self.kind}): {self.ok} ok, {self.errors} errors, "
                f"{self.skipped} skipped (done before), {self.chunks} chunks, "
                f"{self.seconds:.1f} s ({rate:.2f} rows/s), worker deaths {self.deaths} "
                f"(re-runs {self.reruns}, splits {self.splits}, lost molecules {self.lost})")


def task_and_params(spec: JobSpec) -> tuple[Callable, dict]:
    """The pure task of a job kind and its plain-dict parameters."""
    common = {"n": spec.conformers.n, "seed": spec.conformers.seed, "threads": spec.threads}
    if spec.kind == "label":
        return label_task, {**common, "level": spec.level.to_dict(), "forces": spec.forces}
    if spec.kind == "predict":
        from molpre.tracking import tracking_uri

        return predict_task, {**common, "model": spec.model.source,
                              "aggregation": spec.model.aggregation,
                              "batch_size": spec.model.batch_size,
                              "tracking_uri": tracking_uri()}
    if spec.kind == "fragments":
        f = spec.fragments
        return fragments_task, {"min_heavy": f.min_heavy, "max_heavy": f.max_heavy,
                                "elements": list(f.elements)}
    return corpus_task, {**common, "copies": spec.perturb.copies, "sigma": spec.perturb.sigma,
                         "level": spec.level.to_dict() if spec.label else None,
                         "forces": spec.forces}


def make_writer(spec: JobSpec, out: str | Path, input_path: str | Path):
    from molpre.qc.levels import validate_level
    from molpre.workflow.writers import CorpusWriter, FragmentWriter, LabelWriter, PredictWriter

    if spec.kind == "label":
        validate_level(spec.level)  # an unknown method/basis stops here, before any work
        return LabelWriter(out, spec.level)
    if spec.kind == "predict":
        return PredictWriter(out, input_path)
    if spec.kind == "fragments":
        return FragmentWriter(out)
    settings = {"conformers": spec.conformers.n, "seed": spec.conformers.seed,
                "shard_size": spec.shard_size, "perturb": dataclasses.asdict(spec.perturb)}
    if spec.label:
        validate_level(spec.level)
        settings["labels"] = {"level": spec.level.tag, "forces": spec.forces}
    return CorpusWriter(out, spec.shard_size, settings)


log = logging.getLogger(__name__)

#: What ``-o`` may be for each job kind (corpus: a folder).
OUTPUT_SUFFIXES = {"label": (".db",), "predict": (".csv", ".parquet")}


def job_outputs(spec: JobSpec, out: str | Path) -> list:
    """Every path a job writes: OUT (a folder for corpus jobs), its ledger and lock, and the
    label store's sidecars."""
    from molpre.outputs import folder

    out = Path(out)
    paths = [folder(out) if spec.kind == "corpus" else out, ledger_path(out), lock_path(out)]
    if spec.kind == "label":
        paths += [out.with_name(out.name + s) for s in (".rows.csv", ".lock", ".flock")]
    return paths


def check_job(spec: JobSpec, input_path: str | Path, out: str | Path,
              extra_inputs: Iterable[str | Path | None] = ()) -> None:
    """Everything about a job knowable before work, each failure one line: OUT is the right
    kind for the job and destroys no input (:func:`molpre.outputs.guard`), the input is a
    file, and a predict job's model loads (molpre.inference.source, no code run).

    Raises:
        OutputError, FileNotFoundError, molpre.inference.ModelLoadError.
    """
    from molpre.outputs import OutputError, guard, is_url

    model = spec.model.source if spec.kind == "predict" else None
    guard(job_outputs(spec, out), [input_path, model, *extra_inputs])
    suffixes = OUTPUT_SUFFIXES.get(spec.kind)
    if suffixes and not is_url(out) and Path(out).suffix.lower() not in suffixes:
        raise OutputError(f"-o {out}: a {spec.kind} job writes {' or '.join(suffixes)} "
                          f"(e.g. -o {Path(out).stem}{suffixes[0]})")
    if not Path(input_path).is_file():
        raise FileNotFoundError(f"--input {input_path}: no such file")
    if model:
        from molpre.inference import read_model_source

        read_model_source(model)


def _waiting(out: Path) -> Callable[[Path], None]:
    def say(lock: Path) -> None:
        log.warning("another molpre submit is writing %s (it holds %s); waiting for it to "
                    "finish, then skipping the rows it did", out, lock)
    return say


def _ledger_out(spec: JobSpec, out: Path) -> Path:
    """Where the ledger lives: beside a file output, inside a corpus directory's parent."""
    return ledger_path(out)


def run_job(spec: JobSpec, input_path: str | Path, out: str | Path, backend, *,
            scheduler: str = "", progress: bool = True, track: bool = True,
            window: int | None = None, checked: bool = False,
            on_chunk: Callable[[JobSummary], None] | None = None) -> JobSummary:
    """Run ``spec`` on ``input_path`` into ``out``; resumable; returns the summary.

    Checks first (:func:`check_job`; ``checked``: the caller did), then holds OUT's job lock
    (:func:`molpre.workflow.ledger.exclusive`): a second job on the same OUT waits, then
    skips every row the first recorded.

    Args:
        backend: :class:`~molpre.executor.DaskBackend` or ``ProcessBackend``.
        scheduler: a description for the manifest (address or "LocalCluster(2x1)").
        track: log the manifest as an MLflow run (molpre.tracking's store).
        window: chunks in flight (default: 2 per worker, at least 4).
        on_chunk: called after each chunk is recorded (tests use it to kill a worker).

    Raises:
        FileNotFoundError, OutputError, ModelLoadError, molpre.chem.InputError, LevelError:
            before any work starts.
    """
    out = Path(out)
    if not checked:
        check_job(spec, input_path, out)
        if track:
            from molpre.tracking import check_tracking_uri

            check_tracking_uri()  # the manifest is logged at the end: fail now, not then
    with exclusive(out, on_wait=_waiting(out)):
        return _run_locked(spec, input_path, out, backend, scheduler=scheduler,
                           progress=progress, track=track, window=window, on_chunk=on_chunk)


def _run_locked(spec: JobSpec, input_path: str | Path, out: Path, backend, *, scheduler: str,
                progress: bool, track: bool, window: int | None,
                on_chunk: Callable[[JobSummary], None] | None) -> JobSummary:
    """:func:`run_job`'s work, with OUT's job lock held."""
    from tqdm import tqdm

    start = time.monotonic()
    task, params = task_and_params(spec)
    writer = make_writer(spec, out, input_path)
    ledger = Ledger(_ledger_out(spec, out))
    plan = make_plan(input_path, spec, ledger.done_rows)
    ledger.register(plan.job_id, spec.kind, spec.to_dict(), str(input_path), plan.input_sha256)
    summary = JobSummary(plan.job_id, spec.kind, plan.input_sha256, scheduler)
    bar = tqdm(total=count_rows(input_path), unit="row", desc=spec.kind, disable=not progress,
               mininterval=0.5)

    def record(rows: list[LedgerRow]) -> None:
        ledger.record(plan.job_id, rows)
        for r in rows:
            summary.ok += r.status == "ok"
            summary.errors += r.status != "ok"
        bar.update(len(rows))
        bar.set_postfix(chunks=summary.chunks, errors=summary.errors, refresh=False)

    def flush_rejected() -> None:
        if plan.rejected:
            rejected, plan.rejected = plan.rejected, []
            record([LedgerRow(r.row, r.mol_id, r.input, "error", r.error or "rejected")
                    for r in rejected])

    def on_result(chunk: Chunk, outcomes: list[Outcome]) -> None:
        summary.chunks += 1
        flush_rejected()
        record([row for o in outcomes for row in writer.rows(o)])
        if on_chunk is not None:
            on_chunk(summary)

    def on_lost(chunk: Chunk, reason: str) -> None:
        summary.chunks += 1
        record([LedgerRow(r.row, r.mol_id, r.input, "error", reason) for r in chunk.records])

    try:
        stats = run_chunks(backend, task, params, plan.chunks, on_result, on_lost,
                           max_attempts=spec.max_attempts, window=window or 8)
        flush_rejected()
        bar.update(plan.skipped)
    finally:
        bar.close()
    summary.skipped = plan.skipped
    summary.deaths, summary.reruns = stats.deaths, stats.reruns
    summary.splits, summary.lost = stats.splits, stats.lost
    summary.output = writer.finish(ledger, plan.job_id)
    summary.seconds = time.monotonic() - start
    ledger.close()
    if track:
        log_manifest(spec, summary, input_path, out)
    return summary


def manifest(spec: JobSpec, summary: JobSummary, input_path, out) -> dict:
    """The job's record: spec, input and its hash, output, counts, timings, scheduler."""
    return {"job_id": summary.job_id, "kind": spec.kind, "input": str(input_path),
            "input_sha256": summary.input_sha256, "output": str(out),
            "scheduler": summary.scheduler, "spec": spec.to_dict(),
            "counts": {"ok": summary.ok, "errors": summary.errors, "skipped": summary.skipped,
                       "chunks": summary.chunks, "worker_deaths": summary.deaths,
                       "reruns": summary.reruns, "splits": summary.splits,
                       "lost": summary.lost, **summary.output},
            "seconds": round(summary.seconds, 3)}


def log_manifest(spec: JobSpec, summary: JobSummary, input_path, out) -> str:
    """Log the manifest as an MLflow run (params, metrics, manifest.json); returns the run id."""
    import mlflow

    from molpre.tracking import start_run

    record = manifest(spec, summary, input_path, out)
    what = {"label": spec.level.tag, "predict": spec.model.source,
            "fragments": f"{spec.fragments.min_heavy}-{spec.fragments.max_heavy} heavy atoms",
            "corpus": f"{spec.conformers.n} conf" + (f" @ {spec.level.tag}" if spec.label else "")
            }[spec.kind]
    tags = {"job.kind": spec.kind, "job.id": summary.job_id, "job.scheduler": summary.scheduler,
            "job.what": what}
    with start_run(f"submit-{spec.kind}-{summary.job_id}", record["spec"],
                   experiment=spec.experiment, dataset_hashes={"input": summary.input_sha256},
                   tags=tags) as run:
        metrics = {k: float(v) for k, v in record["counts"].items()
                   if isinstance(v, int | float)}
        metrics["seconds"] = summary.seconds
        metrics["rows_per_s"] = summary.computed / summary.seconds if summary.seconds else 0.0
        mlflow.log_metrics(metrics)
        mlflow.log_dict(record, "manifest.json")
        return run.info.run_id
