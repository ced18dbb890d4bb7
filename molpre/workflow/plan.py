"""Plan: read and key the inputs, skip what is already recorded, cut the rest into chunks.

The job id is a hash of the input file's bytes and the job spec's result-deciding fields, so
the same job on the same input finds its own finished rows in the ledger and skips them.
Rows that fail intake (bad SMILES, unknown element, ...) never reach a worker: the plan hands
them straight to the writer as error rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from molpre.chem import IntakeConfig, MoleculeRecord, read_molecules
from molpre.executor import Chunk
from molpre.runtime import file_sha256
from molpre.workflow.spec import JobSpec

#: Spec fields that change no result (how work is cut or run), left out of the job id.
RUN_ONLY_FIELDS = ("chunk_size", "max_attempts", "threads", "experiment")


@dataclass
class Plan:
    """What a run has to do: ``chunks`` (lazy) for workers, ``rejected`` error rows for the
    writer, counts so far."""

    job_id: str
    input_sha256: str
    chunks: Iterator[Chunk]
    skipped: int = 0
    rejected: list[MoleculeRecord] = field(default_factory=list)


def job_id(spec: JobSpec, input_sha256: str) -> str:
    """Hash (16 hex) of the input bytes and the spec fields that decide the results."""
    fields = {k: v for k, v in spec.to_dict().items() if k not in RUN_ONLY_FIELDS}
    text = json.dumps({"input": input_sha256, "spec": fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def intake_config(spec: JobSpec) -> IntakeConfig:
    """What the job accepts (its ``intake`` section without the input's columns)."""
    return spec.intake.intake()


def read_records(path: str | Path, spec: JobSpec) -> Iterator[MoleculeRecord]:
    """One record per input row (raises molpre.chem.InputError for file-level problems)."""
    return read_molecules(path, smiles_col=spec.intake.smiles_col, id_col=spec.intake.id_col,
                          config=intake_config(spec))


def count_rows(path: str | Path) -> int | None:
    """A quick row count for the progress bar (text formats; None for others)."""
    path = Path(path)
    if path.suffix.lower() not in (".smi", ".txt", ".smiles", ".csv", ".tsv"):
        return None
    with open(path, "rb") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith(b"#")]
    header = path.suffix.lower() in (".csv", ".tsv") or (
        lines and lines[0].lower().startswith(b"smiles"))
    return max(0, len(lines) - int(bool(header)))


def chunks_of(records: Iterable[MoleculeRecord], size: int, done: set[int],
              plan: Plan) -> Iterator[Chunk]:
    """Cut ok records not in ``done`` into chunks of ``size``; count skips, keep rejects."""
    batch: list[MoleculeRecord] = []
    index = 0
    for record in records:
        if record.row in done:
            plan.skipped += 1
        elif not record.ok:
            plan.rejected.append(record)
        else:
            batch.append(record)
            if len(batch) == size:
                yield Chunk(index, batch)
                index, batch = index + 1, []
    if batch:
        yield Chunk(index, batch)


def make_plan(path: str | Path, spec: JobSpec, done_rows) -> Plan:
    """The plan for ``spec`` on ``path``; ``done_rows(job_id) -> set[int]`` reads the ledger.

    Raises FileNotFoundError for a missing input and InputError for an unreadable one, both
    before any work starts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input {path} does not exist")
    records = read_records(path, spec)
    digest = file_sha256(path)
    ident = job_id(spec, digest)
    plan = Plan(ident, digest, iter(()))
    plan.chunks = chunks_of(records, spec.chunk_size, done_rows(ident), plan)
    return plan
