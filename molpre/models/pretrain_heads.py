"""Heads for self-supervised pretraining, on top of the encoder's outputs.

- :class:`MaskedAtomHead`: invariant node features [N, F] -> element logits [N, 119].
- :class:`ProjectionHead`: pooled embedding [B, F] -> contrastive projection [B, P].
- :class:`DenoiseHead`: equivariant; vector features [N, C, 3] gated by invariant features,
  mixed by an e3nn ``Linear`` (C x 1o -> 1 x 1o) into a noise prediction [N, 3] Angstrom that
  rotates with the input.

Each pretraining objective (:mod:`molpre.train.objectives`) owns the head it trains.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from molpre.data import keys


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


class MaskedAtomHead(nn.Module):
    """Element logits [N, keys.NUM_ELEMENT_TOKENS] from node features [N, F]."""

    def __init__(self, features: int):
        super().__init__()
        self.net = mlp(features, features, keys.NUM_ELEMENT_TOKENS)

    def forward(self, node_features: torch.Tensor) -> torch.Tensor:
        return self.net(node_features)


class ProjectionHead(nn.Module):
    """SimCLR projection [B, F] -> [B, proj_dim]; the loss sees this, the probe the input."""

    def __init__(self, features: int, proj_dim: int = 64):
        super().__init__()
        self.net = mlp(features, features, proj_dim)

    def forward(self, graph_embedding: torch.Tensor) -> torch.Tensor:
        return self.net(graph_embedding)


class DenoiseHead(nn.Module):
    """Noise prediction [N, 3] from node features [N, F] and node vectors [N, C, 3].

    Each vector channel is scaled by an invariant gate computed from the node features,
    then an e3nn ``o3.Linear`` maps ``C x 1o`` to ``1 x 1o``: equivariant by construction.
    """

    def __init__(self, features: int, channels: int):
        super().__init__()
        self.gate = mlp(features, features, channels)
        self.irreps_in = o3.Irreps(f"{channels}x1o")
        self.mix = o3.Linear(self.irreps_in, o3.Irreps("1x1o"))

    def forward(self, node_features: torch.Tensor, node_vectors: torch.Tensor) -> torch.Tensor:
        gated = node_vectors * self.gate(node_features)[..., None]
        return self.mix(gated.reshape(gated.shape[0], -1))


def encoder_dims(encoder: nn.Module, cutoff: float) -> tuple[int, int]:
    """(F, C): widths of NODE_FEATURES [N, F] and NODE_VECTORS [N, C, 3].

    Read from the encoder's ``feature_dim`` / ``vector_channels`` when it has them, else
    measured with one forward pass on a water molecule.
    """
    if hasattr(encoder, "feature_dim") and hasattr(encoder, "vector_channels"):
        return int(encoder.feature_dim), int(encoder.vector_channels)
    from ase.build import molecule

    from molpre.data.graph import atoms_to_sample, collate

    batch = collate([atoms_to_sample(molecule("H2O"), cutoff)])
    with torch.no_grad():
        out = encoder(batch)
    return out[keys.NODE_FEATURES].shape[-1], out[keys.NODE_VECTORS].shape[-2]
