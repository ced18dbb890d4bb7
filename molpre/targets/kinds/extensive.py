"""Extensive scalars: a sum of atomic terms on per-element reference values (energies,
polarizability). Duplicating a molecule far away doubles the value.

``y = sum_i scale * MLP(h_i) + sum_i ref[Z_i]``; the reference values (atomref) are fitted
by least squares on the training labels, and that fit alone is the baseline (``linear``).
Committee spreads grow with size, so they are compared per atom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from molpre.targets.atomref import Atomref, atomref_only, fit_atomref
from molpre.targets.kinds.base import (
    Fitted,
    HeadDims,
    HeadInputs,
    HeadOutput,
    Kind,
    Prior,
    mlp,
    per_molecule,
    register_kind,
)


class ExtensiveHead(nn.Module):
    """``y = sum_i scale * MLP(h_i) + sum_i ref[Z_i]``: a sum of atomic terms on an atomref.

    ``learned`` ``[B]`` (model dtype) is the sum of atomic terms (plus ``inputs.added``, a
    physical term such as the energy's pair repulsion), ``atomic`` ``[N]`` the terms; ``value`` adds the float64 atomref sum, so forces differentiate only the learned
    part.
    """

    kind = "extensive"

    def __init__(self, feature_dim: int, hidden: int, atomref: dict[int, float],
                 scale: float = 1.0, num_elements: int | None = None) -> None:
        super().__init__()
        self.atomref = Atomref(atomref, *([num_elements] if num_elements else []))
        self.readout = mlp(feature_dim, hidden)
        self.hidden, self.scale = int(hidden), float(scale)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": self.hidden, "scale": self.scale,
                "atomref": self.atomref.as_dict()}

    def atomic_terms(self, features: torch.Tensor) -> torch.Tensor:
        """The learned atomic terms ``[N]`` (model dtype) of ``features [N, F]``."""
        return self.readout(features).squeeze(-1) * self.scale

    def forward(self, inputs: HeadInputs) -> HeadOutput:
        atomic = self.atomic_terms(inputs.features)
        learned = per_molecule(atomic, inputs.index, inputs.num_graphs)
        if inputs.added is not None:
            learned = learned + inputs.added.to(learned)
        reference = self.atomref(inputs.z, inputs.index, inputs.num_graphs)
        return HeadOutput(learned.double() + reference, learned, atomic)


@dataclass(frozen=True)
class PerElementPrior(Prior):
    """The per-element fit: ``sum_i ref[Z_i]`` (NaN for an element it never saw)."""

    atomref: dict[int, float]

    @property
    def elements(self) -> set[int]:
        return {int(z) for z in self.atomref}

    def predict(self, numbers: Sequence[Sequence[int]]) -> np.ndarray:
        return atomref_only(numbers, self.atomref)


@register_kind
class Extensive(Kind):
    """A sum of atomic terms on per-element reference values (see the module docstring)."""

    name = "extensive"
    prior_name = "linear"
    prior_description = "per-element fit"
    per_atom = True

    def fit(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> Fitted:
        """Atomref by least squares; the loss scale is the per-molecule spread of what it
        leaves, the atomic terms' scale its per-atom spread."""
        atomref = fit_atomref(numbers, labels)
        resid = np.asarray(labels, dtype=float) - atomref_only(numbers, atomref)
        per_atom = resid / np.array([len(z) for z in numbers])
        return Fitted(max(float(np.std(resid)), 1e-3),
                      {"atomref": atomref, "scale": max(float(np.std(per_atom)), 1e-4)})

    def make_head(self, dims: HeadDims, hidden: int, *, atomref: dict[int, float] | None = None,
                  scale: float = 1.0) -> ExtensiveHead:
        return ExtensiveHead(dims.features, hidden, atomref or {}, scale, dims.num_elements)

    def head_from_config(self, dims: HeadDims, config: dict[str, Any]) -> ExtensiveHead:
        atomref = {int(z): float(e) for z, e in config.get("atomref", {}).items()}
        return ExtensiveHead(dims.features, config["hidden"], atomref, config.get("scale", 1.0),
                             dims.num_elements)

    def prior(self, numbers: Sequence[Sequence[int]], labels: np.ndarray) -> PerElementPrior:
        return PerElementPrior(fit_atomref(numbers, labels))

    def head_prior(self, head: ExtensiveHead) -> PerElementPrior:
        """The head's atomref (the per-element fit of its training labels)."""
        return PerElementPrior(head.atomref.as_dict())

    def refit(self, head: ExtensiveHead, numbers: Sequence[Sequence[int]], labels: np.ndarray,
              predictions: np.ndarray) -> dict[str, Any]:
        """Add the per-element least-squares fit of the training residuals to the atomref
        (``{"atomref_shift": {Z: value}}``, the labels' unit per atom of Z). Elements the
        atomref does not know are left out (their shift has no row to go to)."""
        residuals = np.asarray(labels, dtype=float) - np.asarray(predictions, dtype=float)
        shift = {z: v for z, v in fit_atomref(numbers, residuals).items()
                 if bool(head.atomref.known[z])}
        with torch.no_grad():
            for z, value in shift.items():
                head.atomref.energies[z] += value
        return {"atomref_shift": shift}

