"""Predictor: energies of molecules from a finetuned model, one result row per input.

    from molpre import Predictor
    pred = Predictor.load("runs:/<run_id>/model")     # or models:/name/1, models:/name@alias,
                                                      # a finetune folder, a model.ckpt
    df = pred.predict(["CCO", "c1ccccc1"])             # see COLUMNS
    df = pred.predict(frame, smiles_col="SMILES")      # a DataFrame: its columns are kept
    atoms.calc = pred.calculator()                     # ASE calculator (energy, forces)

Loading never runs code from the model folder: molpre's weights-only checkpoint is found
inside the artifact and rebuilt (molpre.inference.source). SMILES and RDKit molecules get
conformers from molpre.chem (ETKDGv3 + MMFF, on ``workers`` processes), whose model energies
are combined as the ``lowest`` or the Boltzmann-weighted mean (``boltzmann``, at
``temperature`` K); ASE Atoms are used as given after the intake's checks (finite, no
overlapping atoms, at most ``max_atoms`` atoms, elements with a reference energy). A bad input,
or one whose model evaluation fails (even out of memory: the batch is retried smaller, then
one by one), gives a row with status "error" and the reason, never a number.

A committee model (``molpre finetune --ensemble K``, molpre.models.committee) gives the
members' mean in every value column and their spread beside it (``energy_ev_std``,
``gap_ev_std``, ...: population std over members, aggregated over conformers with the same
weights as the values), then ``ood`` (bool) and ``ood_reason``: the spread exceeds the
validation quantile stored in the checkpoint (per atom for the energy), or the molecule has
more atoms than any training molecule. A single model's columns are unchanged: no spread,
no ``ood`` (a single model has no spread to calibrate). Error rows have NaN spreads and
``ood`` False.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ase.units import kB

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.delta import Delta
from molpre.inference.batch import aggregate_columns, columns_from_targets, target_columns
from molpre.inference.inputs import (
    Job,
    default_id,
    first_line,
    items_and_ids,
    job_for,
    merge_frame,
    unsupported_elements,
)
from molpre.inference.options import AGGREGATIONS, OPTIONS, PredictorOptions
from molpre.inference.source import ModelLoadError, read_model_source
from molpre.models.checkpoint import CheckpointError, model_from_payload, read_checkpoint
from molpre.models.committee import STD, Committee, Domain, mean_and_std
from molpre.models.encoder import Encoder
from molpre.targets import get_target

#: Result columns, in order. ``energy_minus_atomref_ev`` is the total minus the sum of the
#: model's per-element reference energies (fitted on its training set): an atomization-style
#: energy, comparable across molecules of different composition.
COLUMNS = ["id", "smiles", "energy_ev", "energy_minus_atomref_ev", "status", "error",
           "n_conformers"]

__all__ = ["AGGREGATIONS", "COLUMNS", "ModelLoadError", "Predictor", "aggregate",
           "resolve_device"]


def aggregate(energies: np.ndarray, how: str = "lowest", temperature: float = 298.15) -> float:
    """One energy (eV) from conformer energies ``[k]`` eV: the lowest or Boltzmann mean."""
    energies = np.asarray(energies, dtype=float)
    if how == "lowest":
        return float(energies.min())
    if how == "boltzmann":
        weights = np.exp(-(energies - energies.min()) / (kB * temperature))
        return float((weights * energies).sum() / weights.sum())
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``: cuda when torch sees a GPU, else cpu; otherwise ``torch.device(device)``
    (ValueError for a bad name or a cuda device torch cannot see)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no GPU: use auto or cpu")
    return resolved


class Predictor:
    """Wraps an EnergyModel and its cutoff (Angstrom); see the module docstring.

    ``device``: where the model runs (None keeps it where it is; ``"auto"``: a GPU if any).
    ``dtype``: ``"float64"`` casts the model to double precision (exact forces for geometry
    optimization or finite differences; the given model is copied, not changed); None keeps
    the checkpoint's dtype. ``options``: any field of
    :class:`~molpre.inference.options.PredictorOptions` (n_conformers, aggregation,
    temperature, batch_size, seed, workers, progress, max_atoms, chunk; their defaults and
    checks are declared there), held in :attr:`options` and readable as attributes
    (``pred.workers``); change them with :meth:`configure`.
    """

    options: PredictorOptions

    def __init__(self, model, cutoff: float, meta: dict[str, Any] | None = None, *,
                 device: str | torch.device | None = None, dtype: str | None = None,
                 **options: Any) -> None:
        if dtype is not None:
            model = _with_dtype(model, dtype)
        if device is not None:
            model = model.to(resolve_device(device))
        self.model = model.eval()
        self.cutoff = float(cutoff)
        self.meta = dict(meta or {})
        self.domain = Domain.from_meta(self.meta) if self.is_committee else None
        self.delta = Delta.from_meta(self.meta.get("delta"))
        self.options = PredictorOptions()
        self.configure(**options)

    def configure(self, **options: Any) -> Predictor:
        """Set any of OPTIONS (workers: conformer processes; progress: a tqdm bar), checked
        by PredictorOptions (ValueError for a bad value, TypeError for an unknown name);
        returns self."""
        unknown = [name for name in options if name not in OPTIONS]
        if unknown:
            raise TypeError(f"unknown predictor option {unknown[0]!r}; options are {OPTIONS}")
        self.options = dataclasses.replace(self.options, **options)
        if "compile" in options:  # else MOLPRE_COMPILE (read when the encoder was built) rules
            for module in self.model.modules():
                if isinstance(module, Encoder):
                    module.compile_blocks(self.options.compile)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def elements(self) -> set[int]:
        """Atomic numbers the model was trained on (has reference energies for)."""
        return set(self.model.elements)

    @property
    def is_committee(self) -> bool:
        """True for a committee (ensemble) model: rows carry spreads and ``ood``."""
        return isinstance(self.model, Committee)

    @property
    def columns(self) -> list[str]:
        """The output columns: id, smiles, one per target (``energy_ev``, ``gap_ev``, ...;
        a committee adds ``<column>_std`` after each and ``ood``, ``ood_reason``), status,
        error, n_conformers."""
        flags = ["ood", "ood_reason"] if self.is_committee else []
        return ["id", "smiles", *self.value_columns, *flags, "status", "error", "n_conformers"]

    @property
    def value_columns(self) -> list[str]:
        """The float columns: one per target (``energy_ev``, ``gap_ev``, ...), each followed
        by its spread ``<column>_std`` for a committee, and ``energy_minus_atomref_ev`` after
        the energy's when the model has an energy head."""
        return value_columns(target_columns(self.model), self.is_committee)

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def from_payload(cls, payload: dict[str, Any], **options: Any) -> Predictor:
        """From a checkpoint dict (molpre.models.checkpoint): the model is rebuilt, not run."""
        try:
            model = model_from_payload(payload)
        except CheckpointError as err:
            raise ModelLoadError(str(err)) from err
        cutoff = payload.get("meta", {}).get("cutoff", model.encoder.config.cutoff)
        return cls(model, cutoff, payload.get("meta"), **options)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> Predictor:
        """From a ``model.ckpt`` (read with ``weights_only=True``, format tag checked)."""
        try:
            payload = read_checkpoint(path)
        except CheckpointError as err:
            raise ModelLoadError(str(err)) from err
        return cls.from_payload(payload, **options)

    @classmethod
    def load(cls, source: str | Path, *, device: str | torch.device = "auto",
             **options: Any) -> Predictor:
        """From a .ckpt, a finetune or pyfunc folder, runs:/..., models:/name/1 or
        models:/name@alias. Only molpre's weights-only checkpoint is read: no code from the
        folder runs (mlflow.pyfunc.load_model would run it; this does not)."""
        return cls.from_payload(read_model_source(source), device=device, **options)

    # -- prediction --------------------------------------------------------------------
    def predict(self, inputs: Any, ids: list | None = None, *, smiles_col: str | None = None,
                id_col: str | None = None) -> pd.DataFrame:
        """One row per input, in input order (see COLUMNS).

        inputs: a SMILES, RDKit Mol, ASE Atoms or MoleculeRecord, a list of them, or a
        DataFrame (SMILES column found case-insensitively or named by ``smiles_col``; ids from
        ``id_col`` or a guessed id column; an ``xyz`` column of extxyz text is used as the
        geometry). A DataFrame's columns come first in the output (renamed ``input_<name>``
        where a result column has the same name), its index is kept.
        """
        frames = list(self.predict_iter(inputs, ids, smiles_col=smiles_col, id_col=id_col))
        if frames:
            return pd.concat(frames)
        empty = pd.DataFrame(columns=self.columns)
        return merge_frame(inputs, empty) if isinstance(inputs, pd.DataFrame) else empty

    def predict_iter(self, inputs: Any, ids: list | None = None, *,
                     smiles_col: str | None = None, id_col: str | None = None,
                     embeddings: bool = False) -> Iterator[pd.DataFrame]:
        """:meth:`predict` in chunks of ``chunk`` rows (bounded memory, written as they come)."""
        from tqdm.auto import tqdm

        items, ids, total = items_and_ids(inputs, ids, smiles_col, id_col)
        frame = inputs if isinstance(inputs, pd.DataFrame) else None
        with tqdm(total=total, desc="predict", unit="mol", disable=not self.progress) as bar:
            done = 0
            for jobs in _chunked(self._jobs(items, ids), int(self.chunk)):
                result = self._predict_jobs(jobs, embeddings)
                if frame is not None:
                    result = merge_frame(frame.iloc[done:done + len(jobs)], result)
                else:
                    result.index = range(done, done + len(jobs))
                done += len(jobs)
                bar.update(len(jobs))
                yield result

    def predict_records(self, records: Iterable) -> pd.DataFrame:
        """One row per molpre.chem MoleculeRecord (ids are the records' mol_id)."""
        return self.predict(list(records))

    def predict_frame(self, frame: pd.DataFrame, smiles_col: str | None = None,
                      **options: Any) -> pd.DataFrame:
        """The pyfunc entry: a table with a SMILES column (any case, or ``smiles_col``;
        optional ``id``, ``xyz``); options as in :meth:`configure`."""
        self.configure(progress=False, **options)
        return self.predict(frame, smiles_col=smiles_col or None).reset_index(drop=True)

    def embed(self, inputs: Any, ids: list | None = None, **kwargs: Any) -> pd.DataFrame:
        """:meth:`predict`'s rows plus ``embedding``: the molecule's pooled invariant encoder
        features ``[F]`` (float64), averaged over its conformers (None on error rows)."""
        frames = list(self.predict_iter(inputs, ids, embeddings=True, **kwargs))
        return pd.concat(frames) if frames else pd.DataFrame(columns=[*self.columns, "embedding"])

    def calculator(self):
        """An ASE calculator (energy eV, forces eV/Angstrom) on the model's device and dtype;
        a delta model's computes its cheap level (energy and forces) at every geometry."""
        from molpre.inference.calculator import MolpreCalculator

        return MolpreCalculator(self.model, self.cutoff, domain=self.domain,
                                max_atoms=int(self.max_atoms), delta=self.delta)

    # -- internals ---------------------------------------------------------------------
    def _jobs(self, items: Iterable, ids: Iterable) -> Iterator[Job]:
        """Jobs in input order; records get their conformers on ``workers`` processes."""
        from molpre.chem import conformer_stream

        jobs = (job_for(item, default_id(item, ident, row), self.elements, int(self.max_atoms))
                for row, (item, ident) in enumerate(zip(items, ids, strict=False), start=1))  # ids: checked or endless
        pending: deque[Job] = deque()

        def records():
            for job in jobs:
                pending.append(job)
                if job.record is not None:
                    yield job.record

        for outcome in conformer_stream(records(), n=int(self.n_conformers),
                                        seed=int(self.seed), workers=int(self.workers),
                                        after=self._cheap_level_hook()):
            while pending[0].record is not outcome.record:
                yield pending.popleft()
            yield self._with_conformers(pending.popleft(), outcome)
        yield from pending

    def _with_conformers(self, job: Job, outcome) -> Job:
        job.record = None
        if not outcome.ok:
            job.error = f"conformer generation failed: {outcome.error}"
            return job
        job.conformers = outcome.conformers
        job.error = unsupported_elements(
            {int(z) for a in job.conformers for z in a.numbers}, self.elements)
        return job

    def _predict_jobs(self, jobs: list[Job], embeddings: bool) -> pd.DataFrame:
        flat = [(k, a) for k, job in enumerate(jobs) if job.error is None for a in job.conformers]
        outputs = self._evaluate([model_sample(a, self.cutoff) for _, a in flat],
                                 int(self.batch_size), embeddings)
        per_job: dict[int, list] = {}
        if self.delta is not None:
            outputs = self._add_cheap_level([a for _, a in flat], outputs)
        for (k, _), out in zip(flat, outputs, strict=True):
            per_job.setdefault(k, []).append(out)
        rows = [self._row(job, per_job.get(k, []), embeddings) for k, job in enumerate(jobs)]
        columns = [*self.columns, "embedding"] if embeddings else self.columns
        return pd.DataFrame(rows, columns=columns)

    def _evaluate(self, samples: list[dict], size: int, embeddings: bool) -> list[dict | str]:
        """Model outputs per sample, or the reason it failed; a batch that fails (out of
        memory, ...) is retried in halves down to one sample, so one input fails alone."""
        out: list[dict | str] = []
        for start in range(0, len(samples), size):
            part = samples[start:start + size]
            try:
                out.extend(self._forward(part, embeddings))
            except (RuntimeError, MemoryError) as err:
                _free_memory()
                if len(part) == 1:
                    out.append(f"model evaluation failed: {first_line(err)}")
                else:
                    out.extend(self._evaluate(part, max(1, len(part) // 2), embeddings))
        return out

    def _forward(self, samples: list[dict], embeddings: bool) -> list[dict]:
        """Per-sample outputs of one batch: ``{column: float}`` per target (``energy_ev``,
        ``gap_ev``, ``dipole_debye`` as a magnitude), and ``embedding`` [F]."""
        batch = collate(samples)
        device = self.device
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.no_grad():
            out = self.model(batch)
        if self.is_committee:
            values = mean_and_std(out, self.model.targets)
        else:
            values = columns_from_targets({name: out[get_target(name).output_key].double().cpu().numpy()
                                           for name in self.model.targets})
        rows = [{col: float(array[i]) for col, array in values.items()} for i in range(len(samples))]
        if embeddings:
            vectors = out[keys.GRAPH_EMBEDDING].double().cpu().numpy()
            for row, vector in zip(rows, vectors, strict=True):
                row["embedding"] = vector
        return rows

    def _row(self, job: Job, outputs: list, embeddings: bool) -> list:
        """The result row of one job (the one place result columns are filled).

        Conformers are combined per target by :func:`aggregate_columns`: weights from the
        energy head when there is one, else the lowest force-field energy conformer; a
        committee's spreads get the same weights, then the domain check."""
        failed = next((o for o in outputs if isinstance(o, str)), None)
        error = job.error or failed
        names = [c for c in self.value_columns if c != "energy_minus_atomref_ev"]
        values = {n: np.array([o[n] for o in outputs]) for n in names} if error is None else {}
        if error is None and not all(np.isfinite(v).all() for v in values.values()):
            error = "the model gave a non-finite value"
        flags = [False, ""] if self.is_committee else []
        if error is not None:
            row = [job.id, job.smiles, *[np.nan] * len(self.value_columns), *flags, "error", error, 0]
            return [*row, None] if embeddings else row
        ff = np.array([a.info.get("ff_energy", np.nan) for a in job.conformers], dtype=float)
        result = aggregate_columns(values, self.aggregation, self.temperature, ff)
        if "energy_ev" in result:
            reference = self._reference_energy(job.conformers[0].numbers)
            result["energy_minus_atomref_ev"] = result["energy_ev"] - reference
        if self.is_committee:
            reason = self._out_of_domain(result, len(job.conformers[0]))
            flags = [bool(reason), reason]
        row = [job.id, job.smiles, *[result[c] for c in self.value_columns], *flags, "ok", "",
               len(outputs)]
        if embeddings:
            row.append(np.mean([o["embedding"] for o in outputs], axis=0))
        return row

    def delta_term(self, atoms) -> float | str:
        """A delta model's baseline for one conformer: ``scale * (E_cheap - offsets)`` eV with
        ``E_cheap`` computed here at the model's cheap level, or the reason that calculation
        failed. (0.0 for a plain model.)"""
        return self.delta_terms([atoms])[0]

    def delta_terms(self, frames: list) -> list[float | str]:
        """:meth:`delta_term` for many conformers."""
        if self.delta is None:
            return [0.0] * len(frames)
        return [self.delta.baseline(atoms.numbers, r.energy) if r.ok
                else f"cheap level {self.delta.level} failed: {r.reason}"
                for atoms, r in zip(frames, self.cheap_results(frames), strict=True)]

    def cheap_results(self, frames: list, forces: bool = False) -> list:
        """A delta model's cheap level of each conformer (``molpre.qc.QCResult``, eV and
        eV/Angstrom): the result its conformer worker attached (:meth:`_cheap_level_hook`),
        else a semi-empirical or force-field level in this process (milliseconds each), a
        PySCF level on ``workers`` processes."""
        from molpre.qc.attached import take_attached
        from molpre.qc.engines import compute_many
        from molpre.qc.runner import compute_conformers

        level = self.delta.level_of_theory
        results = [take_attached(atoms, level, forces) for atoms in frames]
        todo = [k for k, r in enumerate(results) if r is None]
        missing = [frames[k] for k in todo]
        if not missing:
            computed = []
        elif level.engine == "pyscf":
            workers = int(self.workers) or (os.cpu_count() or 1)  # 0: one per core
            computed = compute_conformers(missing, level, forces=forces, workers=workers)
        else:
            computed = compute_many(missing, level, forces=forces)
        for k, result in zip(todo, computed, strict=True):
            results[k] = result
        return results

    def _cheap_level_hook(self):
        """For a delta model on a semi-empirical or force-field level: the conformer
        stream's ``after`` hook that computes that level where each molecule's conformers
        are made (in parallel over ``workers``), for molecules of the model's elements only.
        None otherwise: a PySCF level runs on its own pool, only for conformers the model
        evaluated."""
        import functools

        from molpre.qc.attached import attach_results

        if self.delta is None or self.delta.level_of_theory.engine == "pyscf":
            return None
        return functools.partial(attach_results, level=self.delta.level_of_theory,
                                 elements=frozenset(int(z) for z in self.elements))

    def _add_cheap_level(self, frames: list, outputs: list[dict | str]) -> list[dict | str]:
        """A delta model's energies: each output plus its :meth:`delta_term`, or why it failed.
        The cheap level runs only for conformers the model evaluated."""
        todo = [k for k, out in enumerate(outputs) if not isinstance(out, str)]
        terms = dict(zip(todo, self.delta_terms([frames[k] for k in todo]), strict=True))
        added: list[dict | str] = []
        for k, out in enumerate(outputs):
            term = terms.get(k)
            if isinstance(out, str) or isinstance(term, str):
                added.append(out if isinstance(out, str) else term)
            else:
                added.append({**out, "energy_ev": out["energy_ev"] + term})
        return added

    def _out_of_domain(self, result: dict[str, float], n_atoms: int) -> str:
        """Why a committee row is out of domain ('' when not; '' without a calibration)."""
        if self.domain is None:
            return ""
        stds = {c[:-len(STD)]: v for c, v in result.items() if c.endswith(STD)}
        return self.domain.reason(stds, n_atoms)

    def _reference_energy(self, numbers) -> float:
        """Sum of the model's per-element reference energies (eV) for ``numbers``."""
        table = self.model.atomref.as_dict()
        return float(sum(table[int(z)] for z in numbers))


def _option(name: str) -> property:
    return property(lambda self: getattr(self.options, name),
                    doc=f"``options.{name}`` (change it with configure({name}=...)).")


for _name in OPTIONS:
    setattr(Predictor, _name, _option(_name))


def value_columns(targets: list[str], committee: bool = False) -> list[str]:
    """Float result columns for target columns ``targets`` (``["energy_ev", "gap_ev"]``):
    with ``committee`` each followed by ``<column>_std``; ``energy_minus_atomref_ev`` after
    the energy's."""
    names = [n for t in targets for n in ((t, t + STD) if committee else (t,))]
    if "energy_ev" in names:
        after = names.index("energy_ev") + (2 if committee else 1)
        names.insert(after, "energy_minus_atomref_ev")
    return names


def model_sample(atoms, cutoff: float) -> dict:
    """A model sample with float64 positions (the model casts to its own dtype)."""
    sample = atoms_to_sample(atoms, cutoff)
    sample[keys.POSITIONS] = torch.as_tensor(np.asarray(atoms.positions, dtype=np.float64))
    return sample


def _with_dtype(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    """``model`` in ``dtype`` ("float32" or "float64"); a copy when it has to be cast."""
    wanted = {"float32": torch.float32, "float64": torch.float64}[dtype]
    if next(model.encoder.parameters()).dtype == wanted:
        return model
    return copy.deepcopy(model).to(wanted)


def _chunked(jobs: Iterator[Job], size: int) -> Iterator[list[Job]]:
    batch: list[Job] = []
    for job in jobs:
        batch.append(job)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
