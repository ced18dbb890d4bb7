"""Named encoder presets and one builder.

* ``small``: fast on a CPU (tests, demos): 32 channels, lmax 1, 2 layers, 4.5 A cutoff.
* ``medium``: real work: 64 channels, lmax 2, 3 layers, 5 A cutoff.

``avg_num_neighbors`` is the mean neighbour count of the QM9 sample at each cutoff.
"""

from __future__ import annotations

from typing import Any

from molpre.config import from_dict, to_dict
from molpre.models.encoder import Encoder, EncoderConfig

PRESETS: dict[str, EncoderConfig] = {
    "small": EncoderConfig(
        channels=32, lmax=1, num_layers=2, cutoff=4.5, num_radial_basis=8,
        radial_mlp_width=32, radial_mlp_layers=2, avg_num_neighbors=14.5, attr_dim=8,
    ),
    "medium": EncoderConfig(
        channels=64, lmax=2, num_layers=3, cutoff=5.0, num_radial_basis=8,
        radial_mlp_width=64, radial_mlp_layers=2, avg_num_neighbors=15.8, attr_dim=8,
    ),
}


def resolve_config(preset_or_config: str | EncoderConfig | dict[str, Any], **overrides: Any) -> EncoderConfig:
    """A fresh EncoderConfig from a preset name, a config, or a config dict, plus overrides.

    Unknown override keys and wrong types raise :class:`molpre.config.ConfigError`.
    """
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown encoder preset {preset_or_config!r}; choose from {sorted(PRESETS)}")
        config = PRESETS[preset_or_config]
    elif isinstance(preset_or_config, dict):
        config = EncoderConfig.from_dict(preset_or_config)
    elif isinstance(preset_or_config, EncoderConfig):
        config = preset_or_config
    else:
        raise TypeError(f"expected a preset name, EncoderConfig or dict, got {type(preset_or_config)!r}")
    return from_dict(EncoderConfig, {**to_dict(config), **overrides})


def build_encoder(preset_or_config: str | EncoderConfig | dict[str, Any], **overrides: Any) -> Encoder:
    """``build_encoder("small")``, ``build_encoder("medium", cutoff=4.0)`` or from a config."""
    return Encoder(resolve_config(preset_or_config, **overrides))
