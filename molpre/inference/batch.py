"""Batched inference of a PropertyModel: predictions per target and per Predictor column.

No gradients, eval mode (restored afterwards). Values are float64 in molpre units: energies
eV, dipoles Debye (``[n, 3]`` vectors from :func:`predict_targets`, magnitudes in columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from molpre.data import keys
from molpre.data.graph import collate
from molpre.targets import get_target


def predict_targets(
    model: torch.nn.Module, samples: Sequence[dict[str, torch.Tensor]], batch_size: int = 64
) -> dict[str, np.ndarray]:
    """``{target: [n] or [n, 3]}`` for every target ``model`` carries (molpre units)."""
    specs = [get_target(name) for name in model.targets]
    chunks: dict[str, list[np.ndarray]] = {s.name: [] for s in specs}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            out = model(collate(samples[start : start + batch_size]))
            for spec in specs:
                chunks[spec.name].append(out[spec.output_key].double().cpu().numpy())
    model.train(was_training)
    return {s.name: np.concatenate(chunks[s.name]) if chunks[s.name] else s.kind.empty()
            for s in specs}


def predict_energies(
    model: torch.nn.Module, samples: Sequence[dict[str, torch.Tensor]], batch_size: int = 64
) -> np.ndarray:
    """Predicted energies ``[n]`` (eV, float64) of samples, in eval mode without gradients."""
    if "energy" not in model.targets:
        raise ValueError(f"the model predicts {model.targets}, not the energy")
    return predict_targets(model, samples, batch_size)[keys.ENERGY]


def columns_from_targets(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{column: [n]}`` (``energy_ev``, ``gap_ev``, ``dipole_debye`` as a magnitude)."""
    columns = {}
    for name, array in values.items():
        spec = get_target(name)
        columns[spec.column] = spec.kind.scalar(array)
    return columns


def predict_columns(
    model: torch.nn.Module, samples: Sequence[dict[str, torch.Tensor]], batch_size: int = 64
) -> dict[str, np.ndarray]:
    """The Predictor's value columns for ``samples``: one ``[n]`` array per target."""
    return columns_from_targets(predict_targets(model, samples, batch_size))


def target_columns(model: torch.nn.Module) -> list[str]:
    """The value column names of ``model`` in head order (``["energy_ev", "gap_ev"]``)."""
    return [get_target(name).column for name in model.targets]


def conformer_weights(energies: np.ndarray, how: str = "lowest", temperature: float = 298.15) -> np.ndarray:
    """``[k]`` weights (summing to 1) of a molecule's conformers from energies ``[k]`` eV:
    one-hot on the lowest (``lowest``) or Boltzmann factors at ``temperature`` K."""
    from ase.units import kB

    energies = np.asarray(energies, dtype=float)
    if how == "lowest":
        weights = np.zeros_like(energies)
        weights[int(np.argmin(energies))] = 1.0
        return weights
    if how == "boltzmann":
        weights = np.exp(-(energies - energies.min()) / (kB * temperature))
        return weights / weights.sum()
    raise ValueError(f"aggregation must be 'lowest' or 'boltzmann', got {how!r}")


def aggregate_columns(columns: dict[str, np.ndarray], how: str = "lowest", temperature: float = 298.15,
                      ff_energies: np.ndarray | None = None) -> dict[str, float]:
    """One value per column from a molecule's conformer values ``{column: [k]}``.

    With an ``energy_ev`` column, its conformer weights (:func:`conformer_weights`) apply to
    every column (the lowest-energy conformer's values, or Boltzmann means). Without one, every
    column takes the conformer of lowest force-field energy ``ff_energies`` [k] eV (the first
    conformer when those are unknown), whatever ``how`` says: a model that knows no energy
    cannot weight conformers by it.
    """
    if "energy_ev" in columns:
        weights = conformer_weights(columns["energy_ev"], how, temperature)
    else:
        size = len(next(iter(columns.values()))) if columns else 0
        ff = np.asarray(ff_energies if ff_energies is not None else np.zeros(size), dtype=float)
        weights = conformer_weights(np.where(np.isfinite(ff), ff, np.inf) if ff.size else ff, "lowest")
    return {name: float((weights * np.asarray(values, dtype=float)).sum()) for name, values in columns.items()}
