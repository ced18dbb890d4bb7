"""Non-equilibrium geometries: seeded Gaussian displacements of conformers.

``perturbed_copies(frames, k, sigma, seed)`` returns the frames followed by ``k`` displaced
copies of each, every Cartesian coordinate moved by ``N(0, sigma^2)`` Angstrom. Copies keep
the frame's ``info`` (``mol_id``, ``inchikey``, charge, spin: splits keep them with their
molecule; ``conf_id`` is kept, an int in the label store) and add ``perturbation`` (1..k; 0 on the originals) and ``perturb_sigma``. The
displacements of frame ``i`` depend only on ``(seed, i)``, so a resumed or re-run label job
produces the same geometries (and the label store's content keys skip the finished ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms


def perturbed_copies(frames: Sequence[Atoms], k: int, sigma: float = 0.05,
                     seed: int = 0) -> list[Atoms]:
    """``frames`` then ``k`` copies of each displaced by Gaussian noise of ``sigma`` Angstrom.

    Raises ValueError for ``k < 0`` or ``sigma <= 0`` (with ``k > 0``).
    """
    if k < 0:
        raise ValueError(f"perturb: need K >= 0 copies, got {k}")
    if k and sigma <= 0:
        raise ValueError(f"perturb-sigma: need > 0 Angstrom, got {sigma}")
    originals = [_tagged(atoms, 0, 0.0) for atoms in frames]
    copies = []
    for i, atoms in enumerate(frames):
        rng = np.random.default_rng([int(seed), i])
        for j in range(1, k + 1):
            copy = _tagged(atoms, j, sigma)
            copy.positions = atoms.positions + rng.normal(0.0, sigma, size=atoms.positions.shape)
            copies.append(copy)
    return originals + copies


def _tagged(atoms: Atoms, index: int, sigma: float) -> Atoms:
    copy = atoms.copy()
    copy.calc = None
    copy.info.update({"perturbation": int(index), "perturb_sigma": float(sigma)})
    return copy
