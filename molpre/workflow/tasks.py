"""Pure chunk tasks: ``task(records, params) -> list[Outcome]``, one Outcome per record.

Tasks never touch the output (the writer does) and catch every per-molecule error, so a bad
molecule is a row with a reason. They are importable top-level functions, picklable for a
process pool and for Dask. ``params`` is a plain dict built by :mod:`molpre.workflow.jobs`.

Test hooks (molpre.executor.hooks): a molecule whose ``mol_id`` is listed in
``MOLPRE_WORKFLOW_CRASH_IDS`` kills its worker; one in ``MOLPRE_WORKFLOW_HANG_IDS`` hangs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from molpre.errors import first_line
from molpre.executor.hooks import CRASH_ENV, HANG_ENV, maybe_crash

__all__ = ["CRASH_ENV", "HANG_ENV", "Outcome", "corpus_task", "label_task", "predict_task"]


@dataclass
class Outcome:
    """One record's result: ``error`` None (ok) or a reason; ``value`` is job-specific."""

    row: int
    mol_id: str
    input: str
    error: str | None = None
    value: Any = None
    extra: dict = field(default_factory=dict)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"[:300]


def _conformers(record, params: dict):
    from molpre.chem import embed_conformers

    return embed_conformers(record, n=params["n"], seed=params["seed"])


def label_task(records: list, params: dict) -> list[Outcome]:
    """Conformers, then a PySCF label per conformer. ``value``: [(atoms, key, QCResult)].

    params: level (LevelOfTheory as dict), forces, n, seed, threads.
    """
    from pyscf import lib

    from molpre.qc.content_keys import content_key
    from molpre.qc.engines import compute
    from molpre.qc.levels import LevelOfTheory

    lib.num_threads(params.get("threads", 1))
    level = LevelOfTheory.from_dict(params["level"])

    def labels(record, frames):
        return [(a, content_key(a, level), compute(a, level, params["forces"]))
                for a in frames], {}

    return _per_molecule(records, params, labels)


def _per_molecule(records: list, params: dict, value_of) -> list[Outcome]:
    """One Outcome per record: its conformers, then ``value_of(record, frames) -> (value,
    extra)``; any failure of one molecule becomes that molecule's error row."""
    out = []
    for record in records:
        maybe_crash(record.mol_id)
        outcome = Outcome(record.row, record.mol_id, record.input)
        try:
            outcome.value, outcome.extra = value_of(record, _conformers(record, params))
        except Exception as exc:  # one molecule's failure is its error row
            outcome.error = f"conformers failed: {_reason(exc)}"
        out.append(outcome)
    return out


_PREDICTORS: dict[str, Any] = {}


def _predictor(params: dict):
    """The Predictor for ``params['model']``, loaded once per worker process."""
    from molpre.inference import Predictor

    source = params["model"]
    if source not in _PREDICTORS:
        if params.get("tracking_uri"):
            os.environ["MLFLOW_TRACKING_URI"] = params["tracking_uri"]
        _PREDICTORS[source] = Predictor.load(source)
    return _PREDICTORS[source].configure(
        n_conformers=params["n"], seed=params["seed"], aggregation=params["aggregation"],
        batch_size=params["batch_size"])


def predict_task(records: list, params: dict) -> list[Outcome]:
    """Model energies: ``value`` is the Predictor's row (id, smiles, energy_ev, status, ...)."""
    import torch

    torch.set_num_threads(params.get("threads", 1))
    for record in records:
        maybe_crash(record.mol_id)
    frame = _predictor(params).predict_records(records)
    out = []
    for record, row in zip(records, frame.to_dict("records"), strict=True):
        error = row["error"] or None if row["status"] != "ok" else None
        out.append(Outcome(record.row, record.mol_id, record.input, error, row))
    return out


def corpus_task(records: list, params: dict) -> list[Outcome]:
    """Conformers for the corpus, with ``params['copies']`` displaced copies of each and, when
    ``params['level']`` is set, their labels. ``value`` = (numbers [n] uint8, positions
    [k, n, 3] float32 Angstrom, energies [k] float64 eV or None, forces [k, n, 3] float32
    eV/Angstrom or None); a geometry whose label failed is dropped (``extra['label_failed']``
    counts them, ``extra['label_reason']`` says the first reason) and a molecule with no
    labeled geometry is an error row. ``extra`` also holds smiles, inchikey, scaffold."""
    import numpy as np

    from molpre.data.shards import murcko_scaffold

    level = _level(params)

    def shard_rows(record, frames):
        frames = _displaced(frames, params, record.row)
        extra = {"smiles": record.smiles, "inchikey": record.inchikey,
                 "scaffold": murcko_scaffold(record.mol)}
        energies = forces = None
        if level is not None:
            frames, energies, forces, failed = _labeled(frames, level, params)
            extra.update(label_failed=len(failed), label_reason=failed[0] if failed else "")
            if not frames:
                raise ValueError(f"no geometry could be labeled at {level.tag}: {failed[0]}")
        value = (np.asarray(frames[0].numbers, dtype=np.uint8),
                 np.stack([np.asarray(a.positions, dtype=np.float32) for a in frames]),
                 energies, forces)
        return value, extra

    return _per_molecule(records, params, shard_rows)


def _level(params: dict):
    """The corpus's LevelOfTheory (None: unlabeled), validated once per worker."""
    if not params.get("level"):
        return None
    from molpre.qc.levels import LevelOfTheory, validate_level

    level = LevelOfTheory.from_dict(params["level"])
    if level not in _VALID_LEVELS:
        validate_level(level)
        _VALID_LEVELS.add(level)
    return level


def _displaced(frames: list, params: dict, row: int) -> list:
    """``frames`` then ``params['copies']`` Gaussian-displaced copies of each (seed, row)."""
    copies = int(params.get("copies", 0))
    if not copies:
        return frames
    from molpre.chem.perturb import perturbed_copies

    seed = int(params["seed"]) * 1_000_003 + int(row)
    return perturbed_copies(frames, copies, float(params["sigma"]), seed)


def _labeled(frames: list, level, params: dict):
    """``(kept frames, energies [k] eV, forces [k, n, 3] eV/A or None, failure reasons)``."""
    import numpy as np

    from molpre.qc.engines import compute_many

    results = compute_many(frames, level, forces=bool(params.get("forces")),
                           threads=int(params.get("threads", 1)))
    kept = [(a, r) for a, r in zip(frames, results, strict=True) if r.ok]
    failed = [f"{a.info.get('conf_id', '?')}: {r.reason}"
              for a, r in zip(frames, results, strict=True) if not r.ok]
    energies = np.array([r.energy for _, r in kept], dtype=np.float64)
    forces = (np.stack([np.asarray(r.forces, dtype=np.float32) for _, r in kept])
              if kept and params.get("forces") else None)
    return [a for a, _ in kept], energies, forces, failed


def fragments_task(records: list, params: dict) -> list[Outcome]:
    """Small fragments of each molecule (molpre.chem.fragments): ``value`` = sorted canonical
    SMILES (possibly none). params: min_heavy, max_heavy, elements."""
    from molpre.chem.fragments import FragmentConfig, fragments

    config = FragmentConfig(int(params["min_heavy"]), int(params["max_heavy"]),
                            tuple(params["elements"]))
    out = []
    for record in records:
        maybe_crash(record.mol_id)
        outcome = Outcome(record.row, record.mol_id, record.input)
        try:
            outcome.value = sorted(fragments(record.mol, config))
        except Exception as exc:  # one molecule's failure is its error row
            outcome.error = f"fragmentation failed: {_reason(exc)}"
        out.append(outcome)
    return out


_VALID_LEVELS: set = set()

