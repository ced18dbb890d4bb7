"""Self-supervised objectives: corruptions of a batch and the losses that undo them.

Each objective is a pair: a corruption applied to the collated batch before the encoder
(mask elements, add coordinate noise, present two conformers) and a loss on the encoder's
outputs through a head (:mod:`molpre.models.pretrain_heads`). They compose: one forward
pass on a batch corrupted by every active objective serves all their losses, each weighted
(the SchNetPack ``ModelOutput`` idea: weighted terms summing into one loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from molpre.data import keys

OBJECTIVES = ("mask", "contrast", "denoise")


@dataclass
class ObjectiveConfig:
    """Weights and settings of the three objectives (weight 0 switches one off)."""

    mask_weight: float = 1.0
    mask_fraction: float = 0.15
    mask_coord_noise: float = 0.0  # Angstrom, extra noise on masked atoms only
    contrast_weight: float = 1.0
    temperature: float = 0.1
    proj_dim: int = 64
    denoise_weight: float = 1.0
    noise_sigma: float = 0.05  # Angstrom

    def active(self) -> list[str]:
        weights = {"mask": self.mask_weight, "contrast": self.contrast_weight,
                   "denoise": self.denoise_weight}
        return [name for name in OBJECTIVES if weights[name] > 0]

    def views(self) -> int:
        """Conformers per molecule in a batch: two for the contrastive pair, else one."""
        return 2 if self.contrast_weight > 0 else 1


def mask_atoms(numbers: torch.Tensor, fraction: float,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a ``fraction`` of atoms by ``keys.MASK_TOKEN`` (at least one atom).

    numbers: [N] long. Returns (masked numbers [N], mask [N] bool).
    """
    draw = torch.rand(numbers.shape, generator=generator, device=numbers.device)
    mask = draw < fraction
    if not mask.any():
        mask[torch.argmin(draw)] = True
    return numbers.masked_fill(mask, keys.MASK_TOKEN), mask


def gaussian_noise(shape: torch.Size, sigma: float, like: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Isotropic Gaussian noise [*shape] in Angstrom with standard deviation ``sigma``."""
    noise = torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)
    return noise * sigma


def corrupt(batch: dict[str, torch.Tensor], cfg: ObjectiveConfig,
            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A corrupted copy of ``batch`` for the active objectives.

    Adds keys.MASK / keys.MASKED_TARGET (mask objective) and keys.NOISE [N, 3] Angstrom (the
    total displacement added to keys.POSITIONS, the denoising target).
    """
    out = dict(batch)
    pos = batch[keys.POSITIONS]
    noise = torch.zeros_like(pos)
    if cfg.mask_weight > 0:
        target = batch[keys.ATOMIC_NUMBERS]
        out[keys.ATOMIC_NUMBERS], mask = mask_atoms(target, cfg.mask_fraction, generator)
        out[keys.MASK], out[keys.MASKED_TARGET] = mask, target
        if cfg.mask_coord_noise > 0:
            extra = gaussian_noise(pos.shape, cfg.mask_coord_noise, pos, generator)
            noise = noise + extra * mask[:, None]
    if cfg.denoise_weight > 0:
        noise = noise + gaussian_noise(pos.shape, cfg.noise_sigma, pos, generator)
    out[keys.NOISE] = noise
    out[keys.POSITIONS] = pos + noise
    return out


def masked_atom_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over elements on masked atoms. logits [N, 119], target [N], mask [N].

    Returns (mean loss, accuracy) over the masked atoms.
    """
    logits, target = logits[mask], target[mask]
    loss = F.cross_entropy(logits, target)
    accuracy = (logits.argmax(dim=-1) == target).float().mean()
    return loss, accuracy


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


def denoise_loss(predicted: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean squared error between predicted and true noise [N, 3], in units of ``sigma``."""
    scale = sigma if sigma > 0 else 1.0
    return F.mse_loss(predicted / scale, noise / scale)


def split_views(embedding: torch.Tensor, views: int) -> list[torch.Tensor]:
    """The per-view blocks [B, F] of a view-major [V*B, F] batch embedding."""
    return list(embedding.chunk(views, dim=0))
