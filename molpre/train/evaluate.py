"""Evaluation of a property model: metrics per target with units, baselines, parity plot.

Batched inference lives with the models (molpre.models.inference); ``predict_energies`` is
re-exported here for the first version's callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from molpre.models.inference import predict_energies, predict_targets
from molpre.targets import TargetSpec
from molpre.units import EV_TO_KCAL_PER_MOL, EV_TO_MEV

__all__ = ["predict_energies", "predict_targets", "energy_metrics", "target_metrics",
           "atomref_only", "mean_only", "parity_plot"]


def energy_metrics(pred: np.ndarray, ref: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``{prefix}mae_mev``, ``rmse_mev``, ``mae_kcal``, ``rmse_kcal`` of energies in eV."""
    err = np.asarray(pred, dtype=float) - np.asarray(ref, dtype=float)
    if err.size == 0:
        return {}
    mae, rmse = float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))
    return {
        f"{prefix}mae_mev": mae * EV_TO_MEV, f"{prefix}rmse_mev": rmse * EV_TO_MEV,
        f"{prefix}mae_kcal": mae * EV_TO_KCAL_PER_MOL, f"{prefix}rmse_kcal": rmse * EV_TO_KCAL_PER_MOL,
    }


def target_metrics(spec: TargetSpec, pred: np.ndarray, ref: np.ndarray, prefix: str = "") -> dict[str, float]:
    """MAE and RMSE of one target in its report unit, named by :meth:`TargetSpec.metric_name`
    (``test_mae_gap_mev``); the energy also gets kcal/mol (``test_mae_kcal``)."""
    if spec.name == "energy":
        return energy_metrics(pred, ref, prefix)
    err = spec.errors(pred, ref)
    if err.size == 0:
        return {}
    mae, rmse = float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))
    return {spec.metric_name("mae", prefix): mae * spec.metric_factor,
            spec.metric_name("rmse", prefix): rmse * spec.metric_factor}


def mean_only(spec: TargetSpec, train_labels: np.ndarray, n: int) -> np.ndarray:
    """Baseline predictions ``[n]`` of a target without reference values: the training mean
    (of magnitudes for a vector)."""
    labels = np.asarray(train_labels, dtype=float)
    if spec.kind == "vector" and labels.ndim == 2:
        labels = np.linalg.norm(labels, axis=-1)
    return np.full(n, float(labels.mean()))


def atomref_only(numbers: Sequence[Sequence[int]], atomref: dict[int, float]) -> np.ndarray:
    """Baseline predictions ``[n]`` eV: the sum of reference energies (NaN for unknown Z)."""
    return np.array(
        [sum(atomref.get(int(z), np.nan) for z in zs) for zs in numbers], dtype=float
    )


def parity_plot(
    ref: np.ndarray, pred: np.ndarray, baseline: np.ndarray, path: str | Path, title: str = "",
    unit: str | None = None,
) -> Path:
    """Save a parity plot of energies relative to the atomref baseline (eV), as PNG; with
    ``unit`` (another target: gap in eV, dipole in Debye) the axes are the plain values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = np.asarray(ref) - baseline, np.asarray(pred) - baseline
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.scatter(x, y, s=6, alpha=0.6)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    mae = np.abs(y - x).mean() * EV_TO_MEV
    ax.set_xlabel(f"reference ({unit})" if unit else "reference - atomref (eV)")
    ax.set_ylabel(f"predicted ({unit})" if unit else "predicted - atomref (eV)")
    ax.set_title(title or f"test: MAE {mae:.1f} meV ({mae / 43.364:.2f} kcal/mol)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
