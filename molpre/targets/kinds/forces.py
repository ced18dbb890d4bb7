"""Forces: the negative gradient of an extensive target's head with respect to positions
(``F_i = -dE/dpos_i``, eV/Angstrom). No head of its own: the model differentiates the
energy head's learned part (molpre.models.energy). Labels are ``n x [n_atoms, 3]`` arrays
(ragged); errors are over every force component. The per-element fit has no position
dependence, so its forces, the baseline, are zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from molpre.targets.kinds.base import Fitted, Kind, Prior, register_kind


class ZeroForces(Prior):
    """The per-element baseline's forces: zero on every atom, ``[n_atoms, 3]`` per molecule."""

    def predict(self, numbers: Sequence[Sequence[int]]) -> list[np.ndarray]:  # type: ignore[override]
        return [np.zeros((len(z), 3)) for z in numbers]


@register_kind
class Forces(Kind):
    """The gradient of an extensive target (see the module docstring)."""

    name = "forces"
    prior_name = "linear"
    prior_description = "zero (per-element fit)"
    has_head = False

    def stack(self, values: list) -> list[np.ndarray]:  # type: ignore[override]
        """One ``[n_atoms, 3]`` array per row (molecules differ in size)."""
        return [np.asarray(v, dtype=float).reshape(-1, 3) for v in values]

    def empty(self) -> np.ndarray:
        return np.zeros((0, 3))

    def scalar(self, values) -> np.ndarray:
        """Every force component, flattened ``[3 * atoms]``."""
        if isinstance(values, list | tuple):
            return np.concatenate([np.asarray(v, dtype=float).ravel() for v in values]) \
                if len(values) else np.zeros(0)
        return np.asarray(values, dtype=float).ravel()

    def fit(self, numbers: Sequence[Sequence[int]], labels) -> Fitted:
        """The spread of the force components (the loss usually takes the energy's)."""
        return Fitted(max(float(np.std(self.scalar(labels))), 1e-3))

    def prior(self, numbers: Sequence[Sequence[int]], labels) -> ZeroForces:
        return ZeroForces()
