"""Evaluate a model on a labeled file: energy (and force) errors, a parity plot, a row table.

    from molpre.evaluation import evaluate_model
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
from molpre.predict_inputs import unsupported_elements
from molpre.train.evaluate import atomref_only, energy_metrics, parity_plot
from molpre.units import EV_TO_MEV


@dataclass
class Evaluation:
    """Metrics (see the module docstring), per-row predictions and the files written."""

    metrics: dict[str, float]
    rows: pd.DataFrame
    metrics_path: Path
    parity_path: Path | None


def predict_labeled(predictor, data: LabeledData, with_forces: bool,
                    batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Energies ``[n]`` eV and, if asked, forces ``n x [n_atoms, 3]`` eV/Angstrom at the given
    geometries, in batches on the predictor's device."""
    from molpre.predict import model_sample

    samples = [model_sample(a, predictor.cutoff) for a in data.atoms]
    energies, forces = [], []
    device = predictor.device
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in collate(part).items()}
        with torch.no_grad():
            out = predictor.model(batch, compute_forces=with_forces)
        energies.append(out[keys.PREDICTED_ENERGY].detach().double().cpu().numpy())
        if with_forces:
            flat = out[keys.PREDICTED_FORCES].detach().double().cpu().numpy()
            sizes = [len(s[keys.ATOMIC_NUMBERS]) for s in part]
            forces.extend(np.split(flat, np.cumsum(sizes)[:-1]))
    energy = np.concatenate(energies) if energies else np.zeros(0)
    return energy, (forces if with_forces else None)


def force_metrics(pred: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
    """MAE and RMSE over all force components, meV/Angstrom."""
    err = np.concatenate([(p - r).ravel() for p, r in zip(pred, ref, strict=True)])
    if err.size == 0:
        return {}
    return {"forces_mae_mev_per_a": float(np.abs(err).mean() * EV_TO_MEV),
            "forces_rmse_mev_per_a": float(np.sqrt((err ** 2).mean()) * EV_TO_MEV)}


def evaluate_model(predictor, data: LabeledData, out: str | Path,
                   batch_size: int = 64) -> Evaluation:
    """Metrics, ``predictions.csv``, ``metrics.json`` and ``parity.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    known = [unsupported_elements(a.numbers, predictor.elements) is None for a in data.atoms]
    usable = data.subset([i for i, k in enumerate(known) if k])
    delta = getattr(predictor, "delta", None)
    terms = predictor.delta_terms(list(usable.atoms)) if delta is not None else []
    if delta is not None:  # a delta model: PySCF at its cheap level for every row
        usable = usable.subset([i for i, t in enumerate(terms) if not isinstance(t, str)])
        terms = [t for t in terms if not isinstance(t, str)]
    with_forces = usable.forces is not None and delta is None
    pred, forces = predict_labeled(predictor, usable, with_forces, batch_size)
    if delta is not None:
        pred = pred + np.asarray(terms, dtype=np.float64)
    metrics = energy_metrics(pred, usable.energy)
    if with_forces:
        metrics.update(force_metrics(forces, usable.forces))
    metrics["n"], metrics["n_unsupported"] = len(usable), len(data) - len(usable)
    base = atomref_only([a.numbers for a in usable.atoms], predictor.model.atomref.as_dict())
    parity = parity_plot(usable.energy, pred, base, out / "parity.png") if len(usable) else None
    rows = pd.DataFrame({"mol_id": usable.mol_ids, "energy_ref_ev": usable.energy,
                         "energy_pred_ev": pred, "error_mev": (pred - usable.energy) * EV_TO_MEV})
    rows.to_csv(out / "predictions.csv", index=False)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return Evaluation(metrics, rows, metrics_path, parity)
