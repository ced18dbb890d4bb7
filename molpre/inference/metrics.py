"""Evaluation of a property model: metrics per target with units, baselines, parity plot.

Batched inference of a model on samples is molpre.inference.batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from molpre.targets import TargetSpec, get_target
from molpre.targets.atomref import atomref_only

__all__ = ["energy_metrics", "target_metrics", "atomref_only", "error_metrics", "mean_only",
           "prior_only", "parity_plot"]


def energy_metrics(pred: np.ndarray, ref: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``{prefix}mae_mev``, ``rmse_mev``, ``mae_kcal``, ``rmse_kcal`` of energies in eV."""
    return target_metrics(get_target("energy"), pred, ref, prefix)


def target_metrics(spec: TargetSpec, pred, ref, prefix: str = "") -> dict[str, float]:
    """MAE and RMSE of one target in each of its report units, named by
    :meth:`TargetSpec.metric_name` (``test_mae_gap_mev``; ``test_mae_mev`` and
    ``test_mae_kcal`` for the energy). Errors are the kind's (vectors by magnitude,
    forces over components)."""
    return error_metrics(spec, spec.errors(pred, ref), prefix)


def error_metrics(spec: TargetSpec, errors, prefix: str = "") -> dict[str, float]:
    """MAE and RMSE of ``[n]`` errors (molpre units) in each report unit of ``spec``."""
    err = np.asarray(errors, dtype=float)
    if err.size == 0:
        return {}
    mae, rmse = float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))
    out = {}
    for unit, factor in spec.report_units:
        out[spec.metric_name("mae", prefix, unit)] = mae * factor
        out[spec.metric_name("rmse", prefix, unit)] = rmse * factor
    return out


def mean_only(spec: TargetSpec, train_labels: np.ndarray, n: int) -> np.ndarray:
    """Baseline predictions ``[n]``: the training mean (of magnitudes for a vector)."""
    return np.full(n, float(np.mean(spec.kind.scalar(train_labels))))


def prior_only(spec: TargetSpec, train_numbers, train_labels, numbers) -> np.ndarray:
    """Predictions for ``numbers`` of the baseline ``spec``'s kind fits on the training
    labels: the per-element fit (extensive), the training mean (intensive, vector)."""
    return spec.kind.prior(train_numbers, train_labels).predict(numbers)


def parity_plot(
    ref: np.ndarray, pred: np.ndarray, baseline: np.ndarray, path: str | Path, title: str = "",
    unit: str = "eV", baseline_name: str | None = "baseline",
) -> Path:
    """Save a parity plot of ``[n]`` values relative to a baseline's predictions
    (``baseline_name``: the per-element fit, the training mean; None: plain values), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = np.asarray(ref) - baseline, np.asarray(pred) - baseline
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.scatter(x, y, s=6, alpha=0.6)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    mae = np.abs(y - x).mean()
    what = f" - {baseline_name}" if baseline_name else ""
    ax.set_xlabel(f"reference{what} ({unit})")
    ax.set_ylabel(f"predicted{what} ({unit})")
    ax.set_title(title or f"test: MAE {mae:.4g} {unit}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
