"""Refit what a head fitted before training, on what the trained model leaves.

A head's fitted parameters (an extensive target's per-element reference values) are fitted
on the training labels before training; the network then learns the rest but, stopped at
its best validation epoch inside a time budget, does not leave a zero-mean residual on its
own training molecules (QM9 delta committees: -0.95 to +0.91 kcal/mol a molecule on average
at N = 100-300, -0.17 to +0.15 at N >= 1000; the refit lowered their test MAE by 0.02-0.05 at
N = 100-300 and left it at N >= 1000: bench/results/qm9_xtb/refit). :func:`refit_heads`
moves those parameters by the kind's fit of the training residuals
(:meth:`molpre.targets.kinds.base.Kind.refit`): only training labels are read, so validation
and test stay untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from molpre.data.datasets import LabeledData
from molpre.inference.batch import predict_targets


def refit_heads(model: torch.nn.Module, train: LabeledData,
                samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, dict[str, Any]]:
    """Refit every head of ``model`` (a PropertyModel) on ``train`` (its samples in the same
    order); returns ``{target: what moved}`` for the heads that moved."""
    predictions = predict_targets(model, samples)
    numbers = [a.numbers for a in train.atoms]
    moved = {}
    for name, head in model.heads.items():
        change = model.specs[name].kind.refit(head, numbers, train.labels[name], predictions[name])
        if change:
            moved[name] = change
    return moved


def refit_metrics(moved: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, float]:
    """MLflow metrics of :func:`refit_heads`' result: ``<prefix>refit.<target>.Z<z>`` (the
    shift, the target's unit per atom, x 1000: meV for energies)."""
    return {f"{prefix}refit.{name}.Z{z}": 1000.0 * float(value)
            for name, change in moved.items()
            for z, value in change.get("atomref_shift", {}).items()}
