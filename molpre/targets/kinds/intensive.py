"""Intensive scalars: the mean of atomic terms plus the training mean, no reference values
(orbital energies, the gap). Duplicating a molecule far away leaves the value unchanged.

``y = offset + scale * mean_i MLP(h_i)``, offset and scale the training labels' mean and
spread; the training mean alone is the baseline (``mean``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from molpre.targets.kinds.base import (
    Fitted,
    HeadDims,
    HeadInputs,
    HeadOutput,
    Kind,
    mlp,
    per_molecule,
    register_kind,
    spread,
)


class IntensiveHead(nn.Module):
    """``y = offset + scale * mean_i MLP(h_i)``: a mean of atomic terms, no atomref."""

    kind = "intensive"

    def __init__(self, feature_dim: int, hidden: int, offset: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.readout = mlp(feature_dim, hidden)
        self.hidden, self.offset, self.scale = int(hidden), float(offset), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "offset": self.offset, "scale": self.scale}

    def forward(self, inputs: HeadInputs) -> HeadOutput:
        atomic = self.readout(inputs.features).squeeze(-1)
        total = per_molecule(atomic, inputs.index, inputs.num_graphs)
        count = per_molecule(torch.ones_like(atomic), inputs.index, inputs.num_graphs).clamp(min=1)
        return HeadOutput((self.offset + self.scale * total / count).double())


@register_kind
class Intensive(Kind):
    """A mean of atomic terms on the training mean (see the module docstring)."""

    name = "intensive"
    prior_name = "mean"

    def fit(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> Fitted:
        scale = spread(labels, 1e-3)
        return Fitted(scale, {"offset": float(np.mean(labels)), "scale": scale})

    def make_head(self, dims: HeadDims, hidden: int, *, offset: float = 0.0,
                  scale: float = 1.0) -> IntensiveHead:
        return IntensiveHead(dims.features, hidden, offset, scale)

    def head_from_config(self, dims: HeadDims, config: dict[str, Any]) -> IntensiveHead:
        return IntensiveHead(dims.features, config["hidden"], config.get("offset", 0.0),
                             config.get("scale", 1.0))
