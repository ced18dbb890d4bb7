"""Loss terms of a finetune: weighted energy + forces, and the L2-SP prior penalty.

Energies and forces are compared in units of ``scale`` (eV, the spread of the training
energies after the atomref fit), so the loss starts near 1 whatever the dataset, and the
L2-SP strength alpha means the same thing across datasets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from molpre.data import keys


def energy_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error of molecule energies ``[B]`` (eV), in units of ``scale`` (eV)."""
    diff = (pred - target.to(pred.dtype)) / scale
    return (diff**2).mean()


def forces_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error of force components ``[N, 3]`` (eV/Angstrom), in units of ``scale``."""
    diff = (pred - target.to(pred.dtype)) / scale
    return (diff**2).mean()


def weighted_loss(
    out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], *,
    energy_weight: float = 1.0, forces_weight: float = 0.0, scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``{"loss", "energy", "forces"?}``: energy_weight * L_E + forces_weight * L_F."""
    terms = {"energy": energy_loss(out[keys.PREDICTED_ENERGY], batch[keys.ENERGY], scale)}
    total = energy_weight * terms["energy"]
    if forces_weight > 0:
        terms["forces"] = forces_loss(out[keys.PREDICTED_FORCES], batch[keys.FORCES], scale)
        total = total + forces_weight * terms["forces"]
    terms["loss"] = total
    return terms


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a module's parameters (the w0 of L2-SP)."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def l2sp_penalty(
    named_params: Iterable[tuple[str, torch.Tensor]], reference: Mapping[str, torch.Tensor],
    alpha: float,
) -> torch.Tensor:
    """``alpha / 2 * sum ||w - w0||^2`` over the parameters that have a reference (L2-SP)."""
    total = torch.zeros((), dtype=torch.float64)
    for name, param in named_params:
        if name in reference and param.requires_grad:
            total = total + ((param - reference[name].to(param)) ** 2).sum().double()
    return 0.5 * alpha * total
