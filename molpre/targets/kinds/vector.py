"""Vectors: equivariant by construction (the dipole). Labels are ``[n, 3]`` where every
frame has the vector, else magnitudes ``[n]`` (QM9's ``mu``); a predicted vector is then
compared by its norm. Tables show magnitudes; the baseline is their training mean.

``mu = sum_i q_i (r_i - r_centre) + sum_i m_i`` in Debye: ``q_i`` (e) are scalar per-atom
charges shifted so each molecule's charges add up to its total charge (so a neutral
molecule's dipole does not depend on the origin); ``m_i`` (e*Angstrom) mixes the encoder's
l=1 channels linearly (no bias, so it rotates with them); ``r_centre`` is the centroid.
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
from molpre.units import DEBYE_PER_E_ANGSTROM


class DipoleHead(nn.Module):
    """Charges times centred positions plus atomic dipoles, in Debye (module docstring)."""

    kind = "vector"

    def __init__(self, feature_dim: int, hidden: int, vector_channels: int, scale: float = 1.0) -> None:
        super().__init__()
        self.charges = mlp(feature_dim, hidden)
        self.atomic_dipoles = nn.Linear(vector_channels, 1, bias=False)
        self.hidden, self.vector_channels, self.scale = int(hidden), int(vector_channels), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "scale": self.scale,
                "vector_channels": self.vector_channels}

    def forward(self, inputs: HeadInputs) -> HeadOutput:
        index, num_graphs = inputs.index, inputs.num_graphs
        q = self.charges(inputs.features).squeeze(-1) * self.scale
        count = per_molecule(torch.ones_like(q), index, num_graphs).clamp(min=1)
        total = inputs.charge.to(q) if inputs.charge is not None else torch.zeros_like(count)
        q = q - ((per_molecule(q, index, num_graphs) - total) / count)[index]
        pos = inputs.pos.to(q)
        centre = per_molecule(pos, index, num_graphs) / count.unsqueeze(-1)
        vectors = inputs.vectors.to(q)  # [N, C, 3]
        atomic = self.atomic_dipoles(vectors.transpose(1, 2)).squeeze(-1) * self.scale  # [N, 3]
        dipole = q.unsqueeze(-1) * (pos - centre[index]) + atomic
        return HeadOutput((per_molecule(dipole, index, num_graphs) * DEBYE_PER_E_ANGSTROM).double())


@register_kind
class Vector(Kind):
    """An equivariant vector compared by magnitude where labels are magnitudes."""

    name = "vector"
    prior_name = "mean"

    def stack(self, values: list) -> np.ndarray:
        """``[n, 3]`` when every label is a vector, else ``[n]`` magnitudes."""
        if values and all(np.ndim(v) == 1 for v in values):
            return np.stack([np.asarray(v, dtype=float) for v in values])
        return np.array([float(np.linalg.norm(v)) for v in values], dtype=float)

    def empty(self) -> np.ndarray:
        return np.zeros((0, 3))

    def scalar(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return np.linalg.norm(values, axis=-1) if values.ndim == 2 else values

    def compared(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return pred.norm(dim=-1) if label.dim() == 1 and pred.dim() == 2 else pred

    def abs_errors(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Errors of magnitudes (an epoch's MAE in Debye, whatever the labels' shape)."""
        label = label.norm(dim=-1) if label.dim() == 2 else label
        return (pred.norm(dim=-1) - label.to(pred)).abs()

    def fit(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> Fitted:
        """Charges scaled so that the dipole's spread matches (Debye / 4.8 e*Angstrom)."""
        scale = spread(self.scalar(labels), 1e-3)
        return Fitted(scale, {"scale": scale / DEBYE_PER_E_ANGSTROM})

    def make_head(self, dims: HeadDims, hidden: int, *, scale: float = 1.0) -> DipoleHead:
        return DipoleHead(dims.features, hidden, dims.channels, scale)

    def head_from_config(self, dims: HeadDims, config: dict[str, Any]) -> DipoleHead:
        return DipoleHead(dims.features, config["hidden"],
                          config.get("vector_channels", dims.channels), config.get("scale", 1.0))
