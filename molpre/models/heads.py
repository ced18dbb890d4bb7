"""Readout heads of a property model, one per target kind (molpre.targets).

Each head maps the encoder outputs of a batch to ``[B]`` (scalars) or ``[B, 3]`` (vectors)
in the target's molpre unit. Heads save their own hyperparameters (:meth:`config`) so a
checkpoint rebuilds them with :func:`build_head`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from molpre.data import keys
from molpre.models.atomref import Atomref
from molpre.targets import DEBYE_PER_E_ANGSTROM


def mlp_head(width: int, hidden: int) -> nn.Sequential:
    """``[N, width] -> [N, 1]``: Linear, SiLU, Linear (every head's atomic readout)."""
    return nn.Sequential(nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, 1))


_mlp = mlp_head


def _per_molecule(values: torch.Tensor, index: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Sum of per-atom ``values [N, ...]`` per molecule -> ``[B, ...]``."""
    out = torch.zeros((num_graphs, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


class ExtensiveHead(nn.Module):
    """``y = sum_i scale * MLP(h_i) + sum_i ref[Z_i]``: a sum of atomic terms on an atomref.

    ``forward`` returns ``(learned [B], atomic [N])``; the float64 atomref sum is added by
    :meth:`reference` so forces differentiate only the learned part.
    """

    kind = "extensive"

    def __init__(self, feature_dim: int, hidden: int, atomref: dict[int, float],
                 scale: float = 1.0, num_elements: int = keys.NUM_ELEMENT_TOKENS) -> None:
        super().__init__()
        self.atomref = Atomref(atomref, num_elements)
        self.readout = _mlp(feature_dim, hidden)
        self.hidden, self.scale = int(hidden), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "scale": self.scale,
                "atomref": self.atomref.as_dict()}

    def forward(self, out: dict, index: torch.Tensor, num_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
        atomic = self.readout(out[keys.NODE_FEATURES]).squeeze(-1) * self.scale
        return _per_molecule(atomic, index, num_graphs), atomic

    def reference(self, z: torch.Tensor, index: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """``[B]`` float64: the sum of per-element reference values."""
        return self.atomref(z, index, num_graphs)


class IntensiveHead(nn.Module):
    """``y = offset + scale * mean_i MLP(h_i)``: a mean of atomic terms, no atomref."""

    kind = "intensive"

    def __init__(self, feature_dim: int, hidden: int, offset: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.readout = _mlp(feature_dim, hidden)
        self.hidden, self.offset, self.scale = int(hidden), float(offset), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "offset": self.offset, "scale": self.scale}

    def forward(self, out: dict, index: torch.Tensor, num_graphs: int) -> torch.Tensor:
        atomic = self.readout(out[keys.NODE_FEATURES]).squeeze(-1)
        total = _per_molecule(atomic, index, num_graphs)
        count = _per_molecule(torch.ones_like(atomic), index, num_graphs).clamp(min=1)
        return (self.offset + self.scale * total / count).double()


class DipoleHead(nn.Module):
    """``mu = sum_i q_i (r_i - r_centre) + sum_i m_i`` in Debye: equivariant by construction.

    ``q_i`` (e) are scalar per-atom charges shifted so each molecule's charges add up to its
    total charge (so a neutral molecule's dipole does not depend on the origin); ``m_i``
    (e*Angstrom) mixes the encoder's l=1 channels linearly (no bias, so it rotates with them).
    ``r_centre`` is the molecule's centroid (Angstrom).
    """

    kind = "vector"

    def __init__(self, feature_dim: int, hidden: int, vector_channels: int, scale: float = 1.0) -> None:
        super().__init__()
        self.charges = _mlp(feature_dim, hidden)
        self.atomic_dipoles = nn.Linear(vector_channels, 1, bias=False)
        self.hidden, self.vector_channels, self.scale = int(hidden), int(vector_channels), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "scale": self.scale,
                "vector_channels": self.vector_channels}

    def forward(self, out: dict, index: torch.Tensor, num_graphs: int,
                pos: torch.Tensor, charge: torch.Tensor | None = None) -> torch.Tensor:
        q = self.charges(out[keys.NODE_FEATURES]).squeeze(-1) * self.scale
        count = _per_molecule(torch.ones_like(q), index, num_graphs).clamp(min=1)
        total = charge.to(q) if charge is not None else torch.zeros_like(count)
        q = q - ((_per_molecule(q, index, num_graphs) - total) / count)[index]
        centre = _per_molecule(pos.to(q), index, num_graphs) / count.unsqueeze(-1)
        vectors = out[keys.NODE_VECTORS].to(q)  # [N, C, 3]
        atomic = self.atomic_dipoles(vectors.transpose(1, 2)).squeeze(-1) * self.scale  # [N, 3]
        dipole = q.unsqueeze(-1) * (pos.to(q) - centre[index]) + atomic
        return (_per_molecule(dipole, index, num_graphs) * DEBYE_PER_E_ANGSTROM).double()


def build_head(spec_kind: str, feature_dim: int, vector_channels: int, cfg: dict[str, Any]) -> nn.Module:
    """Rebuild a head from its :meth:`config` dict (atomref keys may be strings)."""
    kind = cfg.get("kind", spec_kind)
    if kind != spec_kind:
        raise ValueError(f"head kind {kind!r} does not match the target's kind {spec_kind!r}")
    if kind == "extensive":
        atomref = {int(z): float(e) for z, e in cfg.get("atomref", {}).items()}
        return ExtensiveHead(feature_dim, cfg["hidden"], atomref, cfg.get("scale", 1.0))
    if kind == "intensive":
        return IntensiveHead(feature_dim, cfg["hidden"], cfg.get("offset", 0.0), cfg.get("scale", 1.0))
    if kind == "vector":
        return DipoleHead(feature_dim, cfg["hidden"], cfg.get("vector_channels", vector_channels),
                          cfg.get("scale", 1.0))
    raise ValueError(f"unknown head kind {kind!r}")
