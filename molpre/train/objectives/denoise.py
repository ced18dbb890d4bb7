"""Coordinate denoising: add Gaussian noise to positions, predict it equivariantly."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from molpre.data import keys
from molpre.models.pretrain_heads import DenoiseHead
from molpre.train.objectives.base import EncoderDims, Objective, add_displacement, register
from molpre.train.objectives.masked_atoms import gaussian_noise


@dataclass(frozen=True)
class DenoiseOptions:
    """sigma: Angstrom, standard deviation of the noise added to every position."""

    sigma: float = 0.05


def denoise_loss(predicted: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean squared error between predicted and true noise [N, 3], in units of ``sigma``."""
    scale = sigma if sigma > 0 else 1.0
    return F.mse_loss(predicted / scale, noise / scale)


@register
class Denoise(Objective):
    """Target: keys.NOISE, the total displacement (this noise plus any added before it)."""

    name = "denoise"
    Options = DenoiseOptions

    def build_head(self, dims: EncoderDims) -> DenoiseHead:
        return DenoiseHead(dims.features, dims.channels)

    def corrupt(self, batch, generator=None):
        pos = batch[keys.POSITIONS]
        return add_displacement(batch, gaussian_noise(pos.shape, self.options.sigma, pos, generator))

    def loss(self, out):
        predicted = self.head(out[keys.NODE_FEATURES], out[keys.NODE_VECTORS])
        return denoise_loss(predicted, out[keys.NOISE], self.options.sigma), {}
