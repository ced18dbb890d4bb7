"""Masked-atom prediction: hide a fraction of elements, predict them from the rest."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from molpre.data import keys
from molpre.models.pretrain_heads import MaskedAtomHead
from molpre.train.objectives.base import EncoderDims, Objective, add_displacement, register


@dataclass(frozen=True)
class MaskOptions:
    """fraction: share of atoms masked (at least one per batch); coord_noise: Angstrom of
    extra Gaussian noise on the masked atoms' positions only."""

    fraction: float = 0.15
    coord_noise: float = 0.0


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


def masked_atom_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over elements on masked atoms. logits [N, 119], target [N], mask [N].

    Returns (mean loss, accuracy) over the masked atoms.
    """
    logits, target = logits[mask], target[mask]
    loss = F.cross_entropy(logits, target)
    accuracy = (logits.argmax(dim=-1) == target).float().mean()
    return loss, accuracy


def frequency_baseline(target: torch.Tensor) -> torch.Tensor:
    """Accuracy of always guessing the most frequent element of ``target`` [M] (0-d)."""
    if target.numel() == 0:
        return torch.zeros(())
    return torch.bincount(target).max().float() / target.numel()


@register
class MaskedAtoms(Objective):
    """Adds keys.MASK [N] bool and keys.MASKED_TARGET [N] (true Z); logs loss, acc, and the
    accuracy of always guessing the commonest masked element (baseline)."""

    name = "mask"
    Options = MaskOptions

    def build_head(self, dims: EncoderDims) -> MaskedAtomHead:
        return MaskedAtomHead(dims.features)

    def corrupt(self, batch, generator=None):
        out = dict(batch)
        target = batch[keys.ATOMIC_NUMBERS]
        out[keys.ATOMIC_NUMBERS], mask = mask_atoms(target, self.options.fraction, generator)
        out[keys.MASK], out[keys.MASKED_TARGET] = mask, target
        if self.options.coord_noise > 0:
            pos = batch[keys.POSITIONS]
            extra = gaussian_noise(pos.shape, self.options.coord_noise, pos, generator)
            out = add_displacement(out, extra * mask[:, None])
        return out

    def loss(self, out):
        logits = self.head(out[keys.NODE_FEATURES])
        target, mask = out[keys.MASKED_TARGET], out[keys.MASK]
        loss, accuracy = masked_atom_loss(logits, target, mask)
        return loss, {"acc": accuracy, "baseline": frequency_baseline(target[mask])}
