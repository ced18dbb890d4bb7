"""Loss terms of a finetune: weighted per-target terms (+ forces), and the L2-SP penalty.

Each target is compared in units of its ``scale`` (the spread of its training labels, after
the atomref fit for extensive targets), so every term starts near 1 whatever the dataset and
the L2-SP strength alpha means the same thing across datasets. Vector labels that are only
magnitudes (QM9's ``mu``) are compared with the norm of the predicted vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from molpre.data import keys
from molpre.targets import TargetSpec, get_target


def energy_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error of molecule energies ``[B]`` (eV), in units of ``scale`` (eV)."""
    diff = (pred - target.to(pred.dtype)) / scale
    return (diff**2).mean()


def forces_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error of force components ``[N, 3]`` (eV/Angstrom), in units of ``scale``."""
    diff = (pred - target.to(pred.dtype)) / scale
    return (diff**2).mean()


def target_loss(spec: TargetSpec, pred: torch.Tensor, label: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error of ``pred`` ``[B]`` or ``[B, 3]`` against ``label`` in units of
    ``scale``; a vector target with ``[B]`` labels compares the norm of ``pred``."""
    if spec.kind == "vector" and label.dim() == 1 and pred.dim() == 2:
        pred = pred.norm(dim=-1)
    return energy_loss(pred, label, scale)


def weighted_loss(
    out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], *,
    energy_weight: float = 1.0, forces_weight: float = 0.0, scale: float = 1.0,
    targets: Iterable[str] = ("energy",), weights: Mapping[str, float] | None = None,
    scales: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """``{"loss", <target>..., "forces"?}``: sum_t w_t * L_t + forces_weight * L_F.

    The energy's weight and scale default to ``energy_weight`` and ``scale`` (the first
    version's arguments); other targets' to 1.
    """
    weights, scales = dict(weights or {}), dict(scales or {})
    terms, total = {}, None
    for name in targets:
        spec = get_target(name)
        weight = weights.get(name, energy_weight if name == "energy" else 1.0)
        spread = scales.get(name, scale if name == "energy" else 1.0)
        terms[name] = target_loss(spec, out[spec.output_key], batch[spec.label_key], spread)
        total = weight * terms[name] if total is None else total + weight * terms[name]
    if forces_weight > 0:
        spread = scales.get("energy", scale)
        terms["forces"] = forces_loss(out[keys.PREDICTED_FORCES], batch[keys.FORCES], spread)
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
