"""Input checks that turn bad conformers into clear error reasons before any SCF starts."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from molpre.qc.levels import LevelOfTheory

#: Atoms closer than this (Angstrom) are "overlapping"; the shortest real bond (H2) is 0.74 A.
MIN_DISTANCE_A = 0.5


def check_size(atoms: Atoms, level: LevelOfTheory) -> str | None:
    """Reason if the molecule is empty or larger than ``level.max_atoms``."""
    if len(atoms) == 0:
        return "no atoms"
    if len(atoms) > level.max_atoms:
        return f"too many atoms: {len(atoms)} > max_atoms {level.max_atoms}"
    return None


def check_overlap(atoms: Atoms, min_distance: float = MIN_DISTANCE_A) -> str | None:
    """Reason naming the closest pair if two atoms are closer than ``min_distance`` Angstrom."""
    pos = np.asarray(atoms.get_positions(), dtype=float)
    if len(pos) < 2:
        return None
    diff = pos[:, None, :] - pos[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    i, j = np.unravel_index(np.argmin(dist), dist.shape)
    if dist[i, j] < min_distance:
        sym = atoms.get_chemical_symbols()
        return (
            f"overlapping atoms: {sym[i]}{i} and {sym[j]}{j} are {dist[i, j]:.3f} A apart "
            f"(< {min_distance} A)"
        )
    return None


def check_electrons(atoms: Atoms, charge: int, spin: int) -> str | None:
    """Reason if charge and spin multiplicity ``spin`` (2S+1) do not fit the electron count."""
    if spin < 1:
        return f"spin multiplicity must be >= 1, got {spin}"
    n_electrons = int(atoms.numbers.sum()) - charge
    unpaired = spin - 1
    if n_electrons < 0 or unpaired > n_electrons:
        return f"charge {charge} and multiplicity {spin} impossible with {n_electrons} electrons"
    if (n_electrons - unpaired) % 2:
        parity = "odd" if n_electrons % 2 else "even"
        return (
            f"{parity} electron count ({n_electrons}) with spin multiplicity {spin} "
            f"(charge {charge}); set spin to {spin + 1 if spin == 1 else spin - 1} or fix the charge"
        )
    return None


def check_basis(atoms: Atoms, basis: str) -> str | None:
    """Reason if ``basis`` has no functions for some element (uses PySCF's basis library)."""
    import warnings

    from pyscf import gto

    missing = []
    for symbol in sorted(set(atoms.get_chemical_symbols())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = gto.basis.load(basis, symbol)
            except Exception:  # PySCF raises BasisNotFoundError or KeyError, by version
                found = None
        if not found:
            missing.append(symbol)
    if missing:
        return f"element(s) {', '.join(missing)} missing from basis {basis!r}"
    return None


def check_all(atoms: Atoms, level: LevelOfTheory, charge: int, spin: int) -> str | None:
    """The first failing check's reason, cheapest first; ``None`` if the input is fine."""
    return (
        check_size(atoms, level)
        or check_overlap(atoms)
        or check_electrons(atoms, charge, spin)
        or check_basis(atoms, level.basis)
    )
