"""Per-element reference values ("atomref"): the least-squares fit and the torch prior.

An extensive target (a molecule's energy) is modelled as ``sum_i e_ref[Z_i]`` plus a
learned correction. :func:`fit_atomref` fits the reference values on the training set only
(numpy); :class:`Atomref` holds them in a model (as TorchMD-Net's prior), in float64 whatever
dtype the rest of the model uses: total energies of molecules are ~1e4 eV, where float32
would lose meV. The extensive kind (molpre.targets.kinds.extensive) is built on these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

#: Rows of the element table: the mask token 0 plus Z = 1..118 (as
#: molpre.data.keys.NUM_ELEMENT_TOKENS, which a test keeps equal).
NUM_ELEMENTS = 119


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


def atomref_only(numbers: Sequence[Sequence[int]], atomref: dict[int, float]) -> np.ndarray:
    """Baseline predictions ``[n]``: the sum of reference values (NaN for an unknown Z)."""
    return np.array(
        [sum(atomref.get(int(z), np.nan) for z in zs) for zs in numbers], dtype=float
    )


class Atomref(nn.Module):
    """``energies[Z]`` buffer ``[num_elements]`` float64 eV; unknown elements are 0 and flagged."""

    def __init__(self, atomref: dict[int, float], num_elements: int = NUM_ELEMENTS) -> None:
        super().__init__()
        table = torch.zeros(num_elements, dtype=torch.float64)
        known = torch.zeros(num_elements, dtype=torch.bool)
        for z, energy in atomref.items():
            z = int(z)
            if not 0 < z < num_elements:
                raise ValueError(f"atomref element Z={z} is outside 1..{num_elements - 1}")
            table[z] = float(energy)
            known[z] = True
        self.register_buffer("energies", table)
        self.register_buffer("known", known)

    def _apply(self, fn, recurse=True):  # keep float64 on .float()/.to(dtype); follow devices
        table = self.energies
        super()._apply(fn, recurse)
        self.energies = table.to(device=self.energies.device, dtype=torch.float64)
        return self

    def as_dict(self) -> dict[int, float]:
        """The ``{Z: energy_eV}`` dict this module was built from."""
        zs = torch.nonzero(self.known).flatten().tolist()
        return {int(z): float(self.energies[z]) for z in zs}

    def missing(self, z: torch.Tensor) -> list[int]:
        """Elements in ``z`` (ignoring the mask token 0) that have no reference energy."""
        z = z.to(self.known.device)
        unknown = torch.unique(z[(z > 0) & ~self.known[z.clamp(min=0)]])
        return [int(v) for v in unknown.tolist()]

    def forward(self, z: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """``z [N]``, ``batch [N]`` -> ``[B]`` float64 eV: sum of reference energies per molecule."""
        per_atom = self.energies[z]
        return torch.zeros(num_graphs, dtype=torch.float64, device=per_atom.device).index_add(
            0, batch, per_atom
        )
