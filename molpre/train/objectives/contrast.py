"""Conformer contrast: two conformers of one molecule are a positive pair (NT-Xent)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from molpre.data import keys
from molpre.models.pretrain_heads import ProjectionHead
from molpre.train.objectives.base import EncoderDims, Objective, register


@dataclass(frozen=True)
class ContrastOptions:
    """temperature of the softmax over cosine similarities; proj_dim: projection width."""

    temperature: float = 0.1
    proj_dim: int = 64


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (InfoNCE, SimCLR) loss for positive pairs (z1[i], z2[i]); z1, z2: [B, D].

    Each of the 2B embeddings must pick its partner among the 2B-1 others; cosine
    similarity divided by ``temperature``.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, partner)


def pair_similarity(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cosine similarity of positive pairs (z1[i], z2[i]) and of negatives (i != j)."""
    sim = F.normalize(z1, dim=-1) @ F.normalize(z2, dim=-1).T
    n = sim.shape[0]
    positive = sim.diagonal().mean()
    off = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    negative = sim[off].mean() if n > 1 else torch.zeros((), device=sim.device)
    return positive, negative


def split_views(embedding: torch.Tensor, views: int) -> list[torch.Tensor]:
    """The per-view blocks [B, F] of a view-major [V*B, F] batch embedding."""
    return list(embedding.chunk(views, dim=0))


@register
class ConformerContrast(Objective):
    """Needs two views per molecule; logs loss, pos_sim and neg_sim (cosine, projections)."""

    name = "contrast"
    views = 2
    Options = ContrastOptions

    def build_head(self, dims: EncoderDims) -> ProjectionHead:
        return ProjectionHead(dims.features, self.options.proj_dim)

    def loss(self, out):
        z1, z2 = split_views(self.head(out[keys.GRAPH_EMBEDDING]), 2)
        loss = nt_xent(z1, z2, self.options.temperature)
        positive, negative = pair_similarity(z1.detach(), z2.detach())
        return loss, {"pos_sim": positive, "neg_sim": negative}
