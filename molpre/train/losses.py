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

from molpre.targets import TargetSpec, get_target


def target_loss(spec: TargetSpec, pred: torch.Tensor, label: torch.Tensor, scale: float = 1.0,
                penalty: str = "mse") -> torch.Tensor:
    """Mean squared (``penalty="mse"``) or absolute (``"l1"``) error of ``pred`` ``[B]`` or
    ``[B, 3]`` against ``label`` in units of ``scale``, as the target's kind compares them (a
    vector with ``[B]`` labels by norm)."""
    return spec.kind.loss(pred, label, scale, penalty)


def weighted_loss(
    out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], *,
    forces_weight: float = 0.0, targets: Iterable[str] = ("energy",),
    weights: Mapping[str, float] | None = None, scales: Mapping[str, float] | None = None,
    penalty: str = "mse",
) -> dict[str, torch.Tensor]:
    """``{"loss", <target>..., "forces"?}``: sum_t w_t * L_t + forces_weight * L_F.

    ``weights``/``scales``: per target (default 1). Forces, the energy's gradient, are
    compared in units of the energy's scale. ``penalty``: every term's (``mse`` or ``l1``,
    molpre.targets.kinds.PENALTIES).
    """
    weights, scales = dict(weights or {}), dict(scales or {})
    terms, total = {}, None
    for name in targets:
        spec = get_target(name)
        terms[name] = target_loss(spec, out[spec.output_key], batch[spec.label_key],
                                  scales.get(name, 1.0), penalty)
        weighted = weights.get(name, 1.0) * terms[name]
        total = weighted if total is None else total + weighted
    if forces_weight > 0:
        forces = get_target("forces")
        terms["forces"] = target_loss(forces, out[forces.output_key], batch[forces.label_key],
                                      scales.get("energy", 1.0), penalty)
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
