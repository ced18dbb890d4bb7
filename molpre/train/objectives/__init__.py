"""Self-supervised pretraining objectives, one module each, registered by name.

See :mod:`molpre.train.objectives.base` for the shape of an objective. Every module of this
package is imported here, so a new objective module registers itself; the pretrain config
then names it under ``objectives:`` with a weight and its options.

Built in: ``mask`` (masked atoms), ``contrast`` (conformer contrast), ``denoise``, and on a
labeled corpus ``cheap_energy`` and ``cheap_forces`` (a cheap level of theory).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from molpre.data import keys
from molpre.train.objectives.base import (
    REGISTRY,
    EncoderDims,
    Objective,
    build_objective,
    default_section,
    objective_class,
    parse_options,
    register,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

from molpre.train.objectives.contrast import nt_xent, pair_similarity, split_views  # noqa: E402
from molpre.train.objectives.denoise import denoise_loss  # noqa: E402
from molpre.train.objectives.masked_atoms import (  # noqa: E402
    frequency_baseline,
    gaussian_noise,
    mask_atoms,
    masked_atom_loss,
)

#: The objectives of the default pretrain config, in the order they corrupt a batch.
BUILTIN = ("mask", "contrast", "denoise")

__all__ = [
    "BUILTIN", "REGISTRY", "EncoderDims", "Objective", "active", "build_objective",
    "corrupt", "default_section", "denoise_loss", "frequency_baseline", "gaussian_noise",
    "mask_atoms", "masked_atom_loss", "nt_xent", "objective_class", "pair_similarity",
    "parse_options", "register", "split_views", "views_needed",
]


def active(sections: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names of the configured objectives with weight > 0, in config order (validated)."""
    return [name for name, section in sections.items() if parse_options(name, section)[0] > 0]


def views_needed(objectives: Iterable[Objective] | Mapping[str, Mapping[str, Any]]) -> int:
    """Conformers per molecule a batch needs: the most any active objective asks for."""
    if isinstance(objectives, Mapping):
        objectives = [objective_class(n) for n in active(objectives)]
    return max((o.views for o in objectives), default=1)


def corrupt(batch: dict[str, torch.Tensor], objectives: Iterable[Objective],
            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``batch`` corrupted by each objective in turn; keys.NOISE [N, 3] Angstrom always set
    (zeros when no objective moved an atom)."""
    out = dict(batch)
    out[keys.NOISE] = torch.zeros_like(batch[keys.POSITIONS])
    for objective in objectives:
        out = objective.corrupt(out, generator)
    return out
