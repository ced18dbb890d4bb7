"""Finetuning modes: which encoder the model starts from and which weights may move.

* ``scratch``: a fresh encoder of the preset, everything trained.
* ``probe``: a pretrained encoder, frozen; only the readout head trains.
* ``freeze:K``: the element embedding and the first K interaction blocks frozen.
* ``full``: everything trained, starting from the pretrained weights.
* ``prior``: as full, plus the L2-SP penalty toward the pretrained encoder weights.
"""

from __future__ import annotations

import torch

from molpre.models.checkpoint import DTYPES
from molpre.models.encoder import Encoder, load_encoder
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder
from molpre.train.finetune_config import ConfigError, FinetuneConfig


def start_encoder(config: FinetuneConfig) -> Encoder:
    """The encoder a finetune starts from: the preset (scratch) or the checkpoint, compiled
    where ``config.compile`` asks (molpre.nn.compiled)."""
    encoder = _initial_encoder(config)
    return encoder.compile_blocks() if config.compile else encoder


def _initial_encoder(config: FinetuneConfig) -> Encoder:
    if config.mode == "scratch":
        try:
            return build_encoder(config.preset)
        except ValueError as err:
            raise ConfigError(str(err)) from err
    try:
        return load_encoder(config.encoder)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"cannot use encoder {config.encoder}: {err}") from err


def apply_mode(model: EnergyModel, mode: str) -> list[str]:
    """Set ``requires_grad`` for ``mode``; returns the names of the frozen parameters."""
    model.requires_grad_(True)
    encoder = model.encoder
    if mode == "probe":
        frozen_modules = [encoder]
    elif mode.startswith("freeze:"):
        k = int(mode.split(":", 1)[1])
        if not 0 <= k <= len(encoder.blocks):
            raise ConfigError(f"{mode}: the encoder has {len(encoder.blocks)} interaction blocks")
        frozen_modules = [encoder.embedding, *encoder.blocks[:k]] if k else []
    else:
        frozen_modules = []
    for module in frozen_modules:
        module.requires_grad_(False)
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def build_model(
    config: FinetuneConfig, encoder: Encoder, atomref: dict[int, float], energy_scale: float
) -> EnergyModel:
    """The EnergyModel to finetune, in the config's dtype, with the mode's weights frozen."""
    model = EnergyModel(encoder, atomref, energy_scale=energy_scale)
    model.to(DTYPES[config.dtype])
    apply_mode(model, config.mode)
    return model


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters the optimizer updates (those with ``requires_grad``)."""
    return [p for p in model.parameters() if p.requires_grad]
