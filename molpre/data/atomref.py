"""Per-element reference energies ("atomref") fitted by least squares.

A molecule's energy is modelled as ``sum_i e_ref[Z_i]`` plus a learned correction; the
reference energies are fitted on the training set only and stored with the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def composition_matrix(numbers: Sequence[Sequence[int]], elements: Sequence[int]) -> np.ndarray:
    """Count matrix ``[n_molecules, n_elements]``: how often each element occurs per molecule."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)), dtype=float)
    for row, zs in enumerate(numbers):
        for z in zs:
            counts[row, column[int(z)]] += 1.0
    return counts


def fit_atomref(
    numbers: Sequence[Sequence[int]], energies: Sequence[float]
) -> dict[int, float]:
    """Fit ``energy ~ sum_i e_ref[Z_i]`` by least squares.

    Args:
        numbers: atomic numbers of each molecule (ragged).
        energies: ``[n_molecules]`` energies, any unit (the result has the same unit).

    Returns:
        ``{Z: reference energy}`` for every element seen.
    """
    if len(numbers) != len(energies):
        raise ValueError(f"{len(numbers)} molecules but {len(energies)} energies")
    if len(numbers) == 0:
        raise ValueError("cannot fit reference energies on an empty set")
    elements = sorted({int(z) for zs in numbers for z in zs})
    counts = composition_matrix(numbers, elements)
    target = np.asarray(energies, dtype=float)
    # lstsq returns the minimum-norm solution when the composition matrix is rank-deficient
    # (e.g. an element that always comes with a fixed partner), so the fit is always defined.
    coef, *_ = np.linalg.lstsq(counts, target, rcond=None)
    return {z: float(c) for z, c in zip(elements, coef, strict=True)}


def atomref_energy(numbers: Sequence[int], atomref: dict[int, float]) -> float:
    """Sum of reference energies for one molecule; KeyError names an unfitted element."""
    try:
        return float(sum(atomref[int(z)] for z in numbers))
    except KeyError as err:
        raise KeyError(f"no reference energy for element Z={err.args[0]}") from None
