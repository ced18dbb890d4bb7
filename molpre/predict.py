"""Predictor: energies of molecules from a finetuned model, one result row per input.

    from molpre import Predictor
    pred = Predictor.load("runs:/<run_id>/model")    # or models:/name/1, a dir, a .ckpt
    df = pred.predict(["CCO", "c1ccccc1"])            # id, smiles, energy_ev, status, error, n_conformers
    atoms.calc = pred.calculator()                    # ASE calculator (energy, forces)

SMILES and RDKit molecules get conformers from molpre.chem (ETKDGv3 + MMFF), whose model
energies are combined as the ``lowest`` or the Boltzmann-weighted mean (``boltzmann``, at
``temperature`` K); ASE Atoms are used as given. A bad input (invalid SMILES, an element the
model has no reference energy for, a failed conformer) gives a row with status "error" and
the reason, never an exception for the batch and never a number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols
from ase.units import kB

from molpre.data.graph import atoms_to_sample
from molpre.models.checkpoint import CheckpointError, load_checkpoint
from molpre.models.inference import aggregate_columns, predict_columns, target_columns

COLUMNS = ["id", "smiles", "energy_ev", "status", "error", "n_conformers"]
AGGREGATIONS = ("lowest", "boltzmann")


class ModelLoadError(ValueError):
    """A model source that does not exist or cannot be loaded (one clear message)."""


@dataclass
class _Job:
    id: str
    smiles: str = ""
    conformers: list[Atoms] = field(default_factory=list)
    error: str | None = None


def aggregate(energies: np.ndarray, how: str = "lowest", temperature: float = 298.15) -> float:
    """One energy (eV) from conformer energies ``[k]`` eV: the lowest or Boltzmann mean."""
    energies = np.asarray(energies, dtype=float)
    if how == "lowest":
        return float(energies.min())
    if how == "boltzmann":
        weights = np.exp(-(energies - energies.min()) / (kB * temperature))
        return float((weights * energies).sum() / weights.sum())
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")


class Predictor:
    """Wraps an EnergyModel and its cutoff; see the module docstring."""

    def __init__(self, model, cutoff: float, meta: dict[str, Any] | None = None, *,
                 n_conformers: int = 3, aggregation: str = "lowest",
                 temperature: float = 298.15, batch_size: int = 64, seed: int = 0) -> None:
        self.model = model.eval()
        self.cutoff = float(cutoff)
        self.meta = dict(meta or {})
        self.configure(n_conformers=n_conformers, aggregation=aggregation,
                       temperature=temperature, batch_size=batch_size, seed=seed)

    def configure(self, **options: Any) -> Predictor:
        """Set n_conformers, aggregation, temperature (K), batch_size or seed; returns self."""
        for name, value in options.items():
            if name not in ("n_conformers", "aggregation", "temperature", "batch_size", "seed"):
                raise TypeError(f"unknown predictor option {name!r}")
            setattr(self, name, value)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
        return self

    @property
    def elements(self) -> set[int]:
        """Atomic numbers the model was trained on (has reference energies for)."""
        return set(self.model.elements)

    @property
    def columns(self) -> list[str]:
        """The output columns: id, smiles, one per target (``energy_ev``, ``gap_ev``, ...),
        status, error, n_conformers."""
        return ["id", "smiles", *target_columns(self.model), "status", "error", "n_conformers"]

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> Predictor:
        try:
            model, payload = load_checkpoint(path)
        except CheckpointError as err:
            raise ModelLoadError(str(err)) from err
        cutoff = payload.get("meta", {}).get("cutoff", model.encoder.config.cutoff)
        return cls(model, cutoff, payload.get("meta"), **options)

    @classmethod
    def load(cls, source: str | Path, **options: Any) -> Predictor:
        """From a checkpoint, a pyfunc or finetune output dir, runs:/... or models:/..."""
        text = str(source)
        if "://" in text or text.startswith(("runs:/", "models:/")):
            return _from_mlflow(text).configure(**options)
        path = Path(text)
        if path.is_file():
            return cls.from_checkpoint(path, **options)
        for candidate in (path, path / "model"):
            if (candidate / "MLmodel").is_file():
                return _from_mlflow(str(candidate)).configure(**options)
        if (path / "model.ckpt").is_file():
            return cls.from_checkpoint(path / "model.ckpt", **options)
        if path.is_dir():
            raise ModelLoadError(f"{path} holds no molpre model (no MLmodel, no model.ckpt)")
        raise ModelLoadError(f"model not found: {source}")

    def predict(self, inputs, ids: list[str] | None = None) -> pd.DataFrame:
        """One row per input (SMILES str, RDKit Mol or ASE Atoms), in input order."""
        items = [inputs] if isinstance(inputs, str | Atoms) else list(inputs)
        ids = ids or [None] * len(items)
        jobs = [self._job(item, ident, row) for row, (item, ident)
                in enumerate(zip(items, ids, strict=True), start=1)]
        return self._run(jobs)

    def predict_records(self, records: list) -> pd.DataFrame:
        """One row per molpre.chem MoleculeRecord (ids are the records' mol_id)."""
        return self._run([self._job(r, r.mol_id, r.row) for r in records])

    def predict_frame(self, frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
        """The pyfunc entry: a table with ``smiles`` (and optional ``id``, ``xyz``) columns."""
        self.configure(**options)
        items, ids = [], []
        for row, rec in enumerate(frame.to_dict("records"), start=1):
            xyz = rec.get("xyz")
            items.append(_atoms_from_text(xyz, rec.get("smiles")) if isinstance(xyz, str) and xyz
                         else str(rec.get("smiles") or ""))
            ids.append(str(rec["id"]) if rec.get("id") not in (None, "") else f"mol-{row}")
        return self.predict(items, ids)

    def calculator(self):
        """An ASE calculator (energy eV, forces eV/Angstrom) backed by this model."""
        from molpre.calculator import MolpreCalculator

        return MolpreCalculator(self.model, self.cutoff)

    # -- internals ---------------------------------------------------------------------
    def _job(self, item: Any, ident: str | None, row: int) -> _Job:
        ident = ident or f"mol-{row}"
        try:
            job = _job_from_input(item, ident, self.n_conformers, self.seed)
        except Exception as err:  # any failure of one input stays that input's error row
            return _Job(ident, str(item) if isinstance(item, str) else "", error=_reason(err))
        if job.error is None:
            missing = sorted({int(z) for a in job.conformers for z in a.numbers} - self.elements)
            if missing:
                names = ", ".join(chemical_symbols[z] for z in missing)
                job.error = f"unsupported element {names}: the model was not trained on it"
        return job

    def _run(self, jobs: list[_Job]) -> pd.DataFrame:
        flat = [(j, a) for j in jobs if j.error is None for a in j.conformers]
        samples = [atoms_to_sample(a, self.cutoff) for _, a in flat]
        names = target_columns(self.model)
        values = predict_columns(self.model, samples, self.batch_size) if samples else {}
        per_job: dict[int, list[int]] = {}
        for row, (job, _) in enumerate(flat):
            per_job.setdefault(id(job), []).append(row)
        rows = []
        for job in jobs:
            index = per_job.get(id(job), [])
            mine = {name: values[name][index] for name in names} if index else {}
            if job.error is None and not all(np.isfinite(v).all() for v in mine.values()):
                job.error = "the model gave a non-finite value"
            ok = job.error is None
            ff = np.array([flat[i][1].info.get("ff_energy", np.nan) for i in index], dtype=float)
            result = aggregate_columns(mine, self.aggregation, self.temperature, ff) if ok else {}
            rows.append([job.id, job.smiles, *[result.get(n, np.nan) for n in names],
                         "ok" if ok else "error", job.error or "", len(index) if ok else 0])
        return pd.DataFrame(rows, columns=self.columns)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _atoms_from_text(text: str, smiles: Any = None) -> Atoms:
    import ase.io

    atoms = ase.io.read(io.StringIO(text), format="extxyz")
    if smiles:
        atoms.info["smiles"] = str(smiles)
    return atoms


def _job_from_input(item: Any, ident: str, n_conformers: int, seed: int) -> _Job:
    from rdkit import Chem

    from molpre.chem import MoleculeRecord, record_from_mol, record_from_smiles

    if isinstance(item, Atoms):
        return _Job(ident, str(item.info.get("smiles", "")), [item])
    if isinstance(item, MoleculeRecord):
        return _job_from_record(item, ident, n_conformers, seed)
    if isinstance(item, str):
        record = record_from_smiles(item, ident)
    elif isinstance(item, Chem.Mol):
        record = record_from_mol(item, ident)
    else:
        return _Job(ident, error=f"unsupported input type {type(item).__name__}")
    return _job_from_record(record, ident, n_conformers, seed)


def _job_from_record(record, ident: str, n_conformers: int, seed: int) -> _Job:
    from molpre.chem import ConformerError, embed_conformers

    if not record.ok:
        return _Job(ident, record.smiles or record.input, error=record.error)
    try:
        conformers = embed_conformers(record, n=n_conformers, seed=seed)
    except ConformerError as err:
        return _Job(ident, record.smiles, error=f"conformer generation failed: {err}")
    return _Job(ident, record.smiles, conformers)


def _from_mlflow(uri: str) -> Predictor:
    import mlflow

    from molpre.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as err:  # MlflowException, OSError, ...: say which model and why
        raise ModelLoadError(f"cannot load model {uri}: {_reason(err)}") from err
    predictor = getattr(model.unwrap_python_model(), "predictor", None)
    if predictor is None:
        raise ModelLoadError(f"{uri} is not a molpre model")
    return predictor
