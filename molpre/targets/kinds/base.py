"""The shape of a target kind, and the registry that names the kinds.

A :class:`Kind` owns everything that differs between kinds of targets, so that nothing
else in molpre switches on a kind's name:

- reading: :meth:`Kind.stack` turns one value per frame into the label array, and
  :meth:`Kind.scalar` into the ``[n]`` values a table shows (a vector's magnitude);
- normalising: :meth:`Kind.fit` reads the training labels once and returns the loss scale
  and the head's fitted parameters (an atomref, an offset, a scale);
- building: :meth:`Kind.make_head` (fresh) and :meth:`Kind.head_from_config` (from a
  checkpoint) build its readout head, an ``nn.Module`` mapping :class:`HeadInputs` to a
  :class:`HeadOutput`; heads save their own :meth:`config` and take explicit tensors;
- scoring: :meth:`Kind.errors` (numpy), :meth:`Kind.abs_errors` and :meth:`Kind.loss`
  (torch) compare predictions with labels;
- comparing: :meth:`Kind.prior` fits the baseline a user would pick instead (named
  :attr:`Kind.prior_name`, a study's baseline arm), and KRR learns what it leaves.

:func:`register_kind` files a subclass under its ``name``. A new kind is one module in
this package (imported automatically) with a subclass decorated ``@register_kind``.
Kinds import nothing of molpre but units and this package: specs (molpre.targets) are
built on them, and everything above reads labels through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

KINDS: dict[str, Kind] = {}


def register_kind(cls: type[Kind]) -> type[Kind]:
    """Class decorator: file one instance of ``cls`` under ``cls.name``; returns ``cls``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    KINDS[cls.name] = cls()
    return cls


def get_kind(kind: Kind | str) -> Kind:
    """The registered kind named ``kind`` (a Kind is returned as it is); KeyError lists
    the known ones."""
    if isinstance(kind, Kind):
        return kind
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"kind must be one of {tuple(KINDS)}, got {kind!r}") from None


#: Per-residual penalties a finetuning loss can average, by name: ``mse`` (squared error,
#: the default) or ``l1`` (absolute error: the loss is then the MAE that is reported).
PENALTIES = {
    "mse": lambda residual: residual**2,
    "l1": torch.abs,
}

@dataclass(frozen=True)
class HeadDims:
    """Widths a head reads: ``features`` F of the invariant per-atom features, ``channels``
    C of the l=1 features, ``num_elements`` rows of a per-element table."""

    features: int
    channels: int
    num_elements: int


@dataclass(frozen=True)
class HeadInputs:
    """What a head sees of one batch (N atoms in B molecules)."""

    features: torch.Tensor  # [N, F] invariant per-atom features
    vectors: torch.Tensor | None  # [N, C, 3] equivariant (l=1) per-atom features
    z: torch.Tensor  # [N] long atomic numbers
    pos: torch.Tensor  # [N, 3] Angstrom
    index: torch.Tensor  # [N] long: the molecule of each atom
    num_graphs: int  # B
    charge: torch.Tensor | None = None  # [B] total charge (e)
    added: torch.Tensor | None = None  # [B] a physical term an extensive head adds to its
    # learned part (the energy's short-range pair repulsion), model dtype


class HeadOutput(NamedTuple):
    """``value``: ``[B]`` or ``[B, 3]`` float64 in the target's molpre unit. ``learned``:
    the part that depends on positions, in the model's dtype (what forces differentiate;
    None when the head has no such split); ``atomic``: ``[N]`` per-atom terms, if any."""

    value: torch.Tensor
    learned: torch.Tensor | None = None
    atomic: torch.Tensor | None = None


@dataclass(frozen=True)
class Fitted:
    """A kind's reading of training labels: ``scale`` (the loss unit, molpre units) and the
    keyword arguments of :meth:`Kind.make_head` fitted on them (``params``)."""

    scale: float
    params: dict[str, Any] = field(default_factory=dict)


class Prior:
    """A baseline fitted on training labels: ``predict(numbers) -> [n]`` scalar values
    (NaN where it cannot predict, e.g. an element it never saw). ``elements``: the atomic
    numbers it knows (None: any)."""

    @property
    def elements(self) -> set[int] | None:
        return None

    def predict(self, numbers: Sequence[Sequence[int]]) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class MeanPrior(Prior):
    """The training mean, whatever the molecule."""

    mean: float

    def predict(self, numbers: Sequence[Sequence[int]]) -> np.ndarray:
        return np.full(len(numbers), self.mean)


def mlp(width: int, hidden: int) -> nn.Sequential:
    """``Linear(width, hidden) -> SiLU -> Linear(hidden, 1)``: the per-atom readout."""
    return nn.Sequential(nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, 1))


def per_molecule(values: torch.Tensor, index: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Sum of per-atom ``values [N, ...]`` per molecule -> ``[B, ...]``."""
    out = torch.zeros((num_graphs, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


def spread(values: np.ndarray, floor: float) -> float:
    """The standard deviation of ``values``, at least ``floor`` (a loss unit is never 0)."""
    return max(float(np.std(values)), floor)


class Kind:
    """Base class of target kinds (see the module docstring). One instance per kind;
    it compares equal to its registry name (``spec.kind == "intensive"``)."""

    name: ClassVar[str] = ""
    #: The study's baseline arm for targets of this kind (``linear``, ``mean``).
    prior_name: ClassVar[str] = "mean"
    #: What that baseline is, in words (axis labels, reports).
    prior_description: ClassVar[str] = "training mean"
    #: Committee spreads of this kind grow with molecule size: compare them per atom.
    per_atom: ClassVar[bool] = False
    #: False for a kind computed from another target's head (forces): no head of its own.
    has_head: ClassVar[bool] = True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Kind):
            return other.name == self.name
        return isinstance(other, str) and other == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

    # reading -----------------------------------------------------------------------------
    def stack(self, values: list) -> np.ndarray:
        """Label array of one value per row (``[n]`` floats by default)."""
        return np.asarray(values, dtype=float)

    def empty(self) -> np.ndarray:
        """Predictions for no sample (the shape :meth:`stack` gives for zero rows)."""
        return np.zeros(0)

    def scalar(self, values: np.ndarray) -> np.ndarray:
        """``[n]`` values a table shows (the identity for scalars)."""
        return np.asarray(values, dtype=float)

    # scoring -----------------------------------------------------------------------------
    def errors(self, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
        """``[n]`` signed errors ``pred - label`` in molpre units."""
        return self.scalar(pred) - self.scalar(label)

    def compared(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``pred`` in the shape of ``label`` (the identity unless labels are reduced)."""
        return pred

    def abs_errors(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Absolute errors, flattened (an epoch's MAE is their mean)."""
        pred = self.compared(pred, label)
        return (pred - label.to(pred)).abs().reshape(-1)

    def loss(self, pred: torch.Tensor, label: torch.Tensor, scale: float = 1.0,
             penalty: str = "mse") -> torch.Tensor:
        """Mean ``penalty`` (a name in :data:`PENALTIES`: squared or absolute error) of the
        residuals in units of ``scale`` (molpre units)."""
        diff = (self.compared(pred, label) - label.to(pred.dtype)) / scale
        return PENALTIES[penalty](diff).mean()

    # normalising and building ------------------------------------------------------------
    def fit(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> Fitted:
        """The loss scale and fitted head parameters from training labels."""
        raise NotImplementedError

    def make_head(self, dims: HeadDims, hidden: int, **params: Any) -> nn.Module:
        """A fresh head (``params`` as :meth:`fit` returns them)."""
        raise TypeError(f"targets of kind {self.name!r} have no head of their own")

    def head_from_config(self, dims: HeadDims, config: dict[str, Any]) -> nn.Module:
        """Rebuild a head from its ``config()`` dict."""
        raise TypeError(f"targets of kind {self.name!r} have no head of their own")

    # comparing ---------------------------------------------------------------------------
    def prior(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> Prior:
        """The baseline fitted on training labels (default: their mean)."""
        return MeanPrior(float(np.mean(self.scalar(labels))))

    def head_prior(self, head: nn.Module) -> Prior | None:
        """The baseline a built head of this kind carries inside it (None: none)."""
        return None

    def refit(self, head: nn.Module, numbers: Sequence[Sequence[int]], labels: np.ndarray,
              predictions: np.ndarray) -> dict[str, Any]:
        """After training: move ``head``'s fitted parameters by the fit of what the trained
        model leaves on its training molecules (``labels - predictions``, ``[n]``); returns
        what moved (``{}``: this kind has nothing to refit; the default)."""
        return {}
