"""Evaluate a model on a labeled file: energy (and force) errors, a parity plot, a row table.

    from molpre.inference.evaluation import evaluate_model
    report = evaluate_model(Predictor.load("out/ft"), load_labeled("test.extxyz", "u0_atom",
                            "kcal/mol", forces=False), "eval/")

Each conformer of the file is predicted at its given geometry (no conformer search), as the
finetune's test metrics are, so a model's ``test_mae_mev`` is reproduced on its test file.
Conformers with an element the model has no reference energy for are skipped and counted.
Metric names: ``mae_mev``, ``rmse_mev``, ``mae_kcal``, ``rmse_kcal`` (energies) and
``forces_mae_mev_per_a``, ``forces_rmse_mev_per_a`` (force components, meV/Angstrom).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molpre.data import keys
from molpre.data.datasets import LabeledData
from molpre.data.graph import collate
from molpre.inference.inputs import unsupported_elements
from molpre.inference.metrics import parity_plot, target_metrics
from molpre.targets import get_target
from molpre.targets.spec import SLUGS


@dataclass
class Evaluation:
    """Metrics (see the module docstring), per-row predictions and the files written."""

    metrics: dict[str, float]
    rows: pd.DataFrame
    metrics_path: Path
    parity_path: Path | None


def predict_labeled(predictor, data: LabeledData, with_forces: bool, batch_size: int = 64,
                    targets: tuple[str, ...] = ("energy",)
                    ) -> tuple[dict[str, np.ndarray], list[np.ndarray] | None]:
    """Model outputs per target name at the given geometries, in batches on the predictor's
    device: ``[n]`` (``[n, 3]`` for a vector target) in molpre units (energy eV), and, if
    asked, forces ``n x [n_atoms, 3]`` eV/Angstrom."""
    from molpre.inference.predictor import model_sample

    samples = [model_sample(a, predictor.cutoff) for a in data.atoms]
    values: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    forces: list[np.ndarray] = []
    device = predictor.device
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in collate(part).items()}
        with torch.no_grad():
            out = predictor.model(batch, compute_forces=with_forces)
        for name in targets:
            values[name].append(out[get_target(name).output_key].detach().double().cpu().numpy())
        if with_forces:
            flat = out[keys.PREDICTED_FORCES].detach().double().cpu().numpy()
            sizes = [len(s[keys.ATOMIC_NUMBERS]) for s in part]
            forces.extend(np.split(flat, np.cumsum(sizes)[:-1]))
    arrays = {name: np.concatenate(v) if v else np.zeros(0) for name, v in values.items()}
    return arrays, (forces if with_forces else None)


def force_metrics(pred: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
    """MAE and RMSE over all force components, meV/Angstrom."""
    return target_metrics(get_target("forces"), pred, ref)


def evaluate_model(predictor, data: LabeledData, out: str | Path,
                   batch_size: int = 64) -> Evaluation:
    """Metrics, ``predictions.csv``, ``metrics.json`` and ``parity.png`` in ``out``.

    Every target of ``data`` (energy, gap, dipole, ...) is scored with its own metric names
    and report unit (molpre.targets); the model must have a head for each.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [s.name for s in data.specs if s.name not in predictor.model.targets]
    if missing:
        raise ValueError(f"the model has no head for {', '.join(missing)} "
                         f"(its targets: {', '.join(predictor.model.targets)})")
    known = [unsupported_elements(a.numbers, predictor.elements) is None for a in data.atoms]
    usable = data.subset([i for i, k in enumerate(known) if k])
    delta = getattr(predictor, "delta", None) if "energy" in usable.targets else None
    with_forces = usable.forces is not None
    cheap = []
    if delta is not None:  # a delta model: its cheap level for every row (forces too)
        cheap = predictor.cheap_results(list(usable.atoms), forces=with_forces)
        kept = [i for i, r in enumerate(cheap) if r.ok]
        usable, cheap = usable.subset(kept), [cheap[i] for i in kept]
    preds, forces = predict_labeled(predictor, usable, with_forces, batch_size,
                                    tuple(usable.targets))
    if delta is not None:
        preds["energy"] = np.array([delta.add(e, a.numbers, r.energy) for e, a, r in
                                    zip(preds["energy"], usable.atoms, cheap, strict=True)])
        if with_forces:
            forces = [delta.add_forces(f, r.forces) for f, r in zip(forces, cheap, strict=True)]
    metrics: dict[str, float] = {}
    for spec in usable.specs:
        metrics.update(target_metrics(spec, preds[spec.name], usable.labels[spec.name]))
    if with_forces:
        metrics.update(force_metrics(forces, usable.forces))
    metrics["n"], metrics["n_unsupported"] = len(usable), len(data) - len(usable)
    parity = _parity(predictor, usable, preds, out / "parity.png") if len(usable) else None
    rows = _rows(usable, preds)
    rows.to_csv(out / "predictions.csv", index=False)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return Evaluation(metrics, rows, metrics_path, parity)


def _parity(predictor, data: LabeledData, preds: dict[str, np.ndarray], path: Path) -> Path:
    """The first target's parity plot, relative to the baseline its head carries (the
    energy's atomref) where it has one, else plain values."""
    spec = data.specs[0]
    ref, pred = spec.kind.scalar(data.labels[spec.name]), spec.kind.scalar(preds[spec.name])
    model = predictor.model
    head = (model.members[0] if hasattr(model, "members") else model).heads[spec.name]
    prior = spec.kind.head_prior(head)
    base = prior.predict([a.numbers for a in data.atoms]) if prior else np.zeros_like(ref)
    mae = np.abs(pred - ref).mean() * spec.metric_factor
    return parity_plot(ref, pred, base, path,
                       title=f"test {spec.name}: MAE {mae:.4g} {spec.metric_unit}", unit=spec.unit,
                       baseline_name=spec.kind.prior_description if prior else None)


def _rows(data: LabeledData, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per conformer: reference, prediction and error per target (vectors as
    norms), named ``<name>_ref_<unit>``, ``<name>_pred_<unit>`` and the error in the report
    unit by the spec's metric spelling (the energy: ``error_mev``, the gap:
    ``gap_error_mev``)."""
    columns: dict[str, object] = {"mol_id": data.mol_ids}
    for spec in data.specs:
        ref, pred = spec.kind.scalar(data.labels[spec.name]), spec.kind.scalar(preds[spec.name])
        unit = spec.column.rsplit("_", 1)[1]
        columns[f"{spec.name}_ref_{unit}"] = ref
        columns[f"{spec.name}_pred_{unit}"] = pred
        columns[error_column(spec)] = (pred - ref) * spec.metric_factor
    return pd.DataFrame(columns)


def error_column(spec) -> str:
    """``<name>_error_<unit>`` (``gap_error_mev``); ``error_mev`` for a target whose metric
    names leave out its name (the energy's first-version spelling)."""
    slug = SLUGS[spec.metric_unit]
    return f"{spec.name}_error_{slug}" if "{name}" in spec.metric_format else f"error_{slug}"
