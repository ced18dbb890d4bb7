"""Per-element reference energies of a label store (the fit itself: molpre.targets.atomref).

:func:`fit_reference_energies` fits ``E ~ sum_i e_ref[Z_i]`` on a label store's (or frames')
energies; :func:`reference_residuals` is what a model has left to learn after it. The fit,
the sums and the torch prior :class:`Atomref` live with the extensive kind, in
:mod:`molpre.targets.atomref`, and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms

from molpre.targets.atomref import (
    Atomref,
    atomref_energy,
    atomref_only,
    composition_matrix,
    fit_atomref,
)

__all__ = ["Atomref", "atomref_energy", "atomref_only", "composition_matrix", "fit_atomref",
           "fit_reference_energies", "reference_residuals"]


def _labeled(labels: Iterable[Atoms] | str | Path) -> list[Atoms]:
    if isinstance(labels, (str, Path)):
        from molpre.data.store import read_labels

        return read_labels(labels)
    return [a for a in labels if a.calc is not None and "energy" in a.calc.results]


def fit_reference_energies(labels: Iterable[Atoms] | str | Path) -> dict[int, float]:
    """Least-squares ``{Z: eV}`` so that ``E ~ sum_i e_ref[Z_i]`` over the labeled set.

    Args:
        labels: ``ase.Atoms`` with an energy (calculator result, eV), or a label store
            path/URL (its ok rows are used). Frames without an energy are ignored.
    """
    frames = _labeled(labels)
    return fit_atomref([a.numbers for a in frames], [a.get_potential_energy() for a in frames])


def reference_residuals(labels: Iterable[Atoms] | str | Path,
                        reference: dict[int, float]) -> np.ndarray:
    """``[n]`` energies minus their reference sums, eV (what a model has left to learn)."""
    frames = _labeled(labels)
    return np.array([a.get_potential_energy() - atomref_energy(a.numbers, reference)
                     for a in frames])
