"""The shape of a pretraining objective, and the registry that names them.

An :class:`Objective` is one ``nn.Module`` that says everything about one self-supervised
task (SchNetPack's ``ModelOutput`` idea, for pretraining):

- ``corrupt(batch, generator)``: what it does to the collated batch before the encoder
  (or nothing); corruptions of all configured objectives apply in turn to one batch;
- ``head``: the module it trains on top of the encoder's outputs (built from
  :class:`EncoderDims`, so it is saved and restored with the pretraining checkpoint);
- ``loss(out) -> (loss, metrics)``: its loss (0-d) and the metrics it logs, computed from
  the encoder's output dict (which holds the corrupted batch's keys too);
- ``views``: conformers per molecule it needs in a batch (2 for a contrastive pair);
- ``clean``: it learns from the uncorrupted batch (the pretraining module gives the clean
  objectives an encoder pass of their own), ``needs_positions_grad``: that pass keeps
  positions differentiable (forces), ``needs_labels``: ``"energy"``/``"forces"`` a labeled
  corpus must hold; ``bind(objectives)``: called once all are built (to share a head);
- ``Options``: a frozen dataclass of its settings, read from the pretrain config's
  ``objectives.<name>`` section (beside ``weight``).

:func:`register` files a subclass under its ``name``; the pretrain config lists objectives
by name, and :func:`build_objective` makes one from its config section. A new objective is
one module: a subclass decorated with ``@register`` (modules in this package are imported
automatically; outside it, importing the module before ``pretrain()`` registers it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from molpre.data import keys


@dataclass(frozen=True)
class EncoderDims:
    """Widths of the encoder outputs a head reads: NODE_FEATURES [N, features] and
    NODE_VECTORS [N, channels, 3]."""

    features: int
    channels: int


@dataclass(frozen=True)
class NoOptions:
    """For an objective without settings."""


class Objective(nn.Module):
    """Base class of pretraining objectives (see the module docstring)."""

    name: ClassVar[str] = ""
    views: ClassVar[int] = 1
    clean: ClassVar[bool] = False
    needs_positions_grad: ClassVar[bool] = False
    needs_labels: ClassVar[str | None] = None
    Options: ClassVar[type] = NoOptions

    def __init__(self, dims: EncoderDims, options: Any = None, weight: float = 1.0):
        super().__init__()
        self.dims = dims
        self.options = options if options is not None else self.Options()
        self.weight = float(weight)
        self.head = self.build_head(dims)

    def build_head(self, dims: EncoderDims) -> nn.Module | None:
        """The head this objective trains (None: it reads the encoder outputs directly)."""
        return None

    def bind(self, objectives: dict[str, Objective]) -> None:
        """Called once every configured objective is built (default: nothing)."""

    def corrupt(self, batch: dict[str, torch.Tensor],
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The batch after this objective's corruption (default: unchanged)."""
        return batch

    def loss(self, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss 0-d, metrics by short name) from the encoder's output dict."""
        raise NotImplementedError


REGISTRY: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: file ``cls`` under ``cls.name`` (a name taken by another class is an error)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no objective name")
    known = REGISTRY.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"objective name {cls.name!r} is taken by {known.__qualname__}")
    REGISTRY[cls.name] = cls
    return cls


def objective_class(name: str) -> type[Objective]:
    """The registered class of objective ``name``; ValueError lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}: known objectives are "
                         f"{sorted(REGISTRY)}") from None


def parse_options(name: str, section: Mapping[str, Any]) -> tuple[float, Any]:
    """(weight, Options instance) of an ``objectives.<name>`` config section.

    Unknown keys and wrongly typed values raise ValueError naming ``objectives.<name>.<key>``.
    """
    cls = objective_class(name)
    values = dict(section or {})
    weight = values.pop("weight", 1.0)
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"objectives.{name}.weight: expected a number, got {weight!r}") from None
    if weight < 0:
        raise ValueError(f"objectives.{name}.weight must be >= 0, got {weight}")
    from molpre.config import check_keys, field_types, from_dict  # the one config loader

    check_keys(values, {"weight": float, **field_types(cls.Options)}, f"objectives.{name}")
    return weight, from_dict(cls.Options, values, prefix=f"objectives.{name}")


def default_section(name: str) -> dict[str, Any]:
    """The config section of objective ``name`` with its defaults (weight 1)."""
    return {"weight": 1.0, **dataclasses.asdict(objective_class(name).Options())}


def build_objective(name: str, section: Mapping[str, Any], dims: EncoderDims) -> Objective:
    """The objective ``name`` configured by its ``objectives.<name>`` section."""
    weight, options = parse_options(name, section)
    return objective_class(name)(dims, options, weight)


def add_displacement(batch: dict[str, torch.Tensor], shift: torch.Tensor) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with POSITIONS moved by ``shift`` [N, 3] Angstrom, accumulated in
    keys.NOISE (the total displacement: what a denoising head must predict)."""
    out = dict(batch)
    noise = batch.get(keys.NOISE)
    out[keys.NOISE] = shift if noise is None else noise + shift
    out[keys.POSITIONS] = batch[keys.POSITIONS] + shift
    return out
