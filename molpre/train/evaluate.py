"""Evaluation of an energy model: batched predictions, MAE/RMSE in meV and kcal/mol, parity plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from molpre.data import keys
from molpre.data.graph import collate
from molpre.units import EV_TO_KCAL_PER_MOL, EV_TO_MEV


def predict_energies(
    model: torch.nn.Module, samples: Sequence[dict[str, torch.Tensor]], batch_size: int = 64
) -> np.ndarray:
    """Predicted energies ``[n]`` (eV, float64) of samples, in eval mode without gradients."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            batch = collate(samples[start : start + batch_size])
            out.append(model(batch)[keys.PREDICTED_ENERGY].double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


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


def atomref_only(numbers: Sequence[Sequence[int]], atomref: dict[int, float]) -> np.ndarray:
    """Baseline predictions ``[n]`` eV: the sum of reference energies (NaN for unknown Z)."""
    return np.array(
        [sum(atomref.get(int(z), np.nan) for z in zs) for zs in numbers], dtype=float
    )


def parity_plot(
    ref: np.ndarray, pred: np.ndarray, baseline: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Save a parity plot of energies relative to the atomref baseline (eV), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = np.asarray(ref) - baseline, np.asarray(pred) - baseline
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.scatter(x, y, s=6, alpha=0.6)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    mae = np.abs(y - x).mean() * EV_TO_MEV
    ax.set_xlabel("reference - atomref (eV)")
    ax.set_ylabel("predicted - atomref (eV)")
    ax.set_title(title or f"test: MAE {mae:.1f} meV ({mae / 43.364:.2f} kcal/mol)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
