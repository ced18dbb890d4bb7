"""Content keys: one hash per (geometry, charge, spin, level) that makes re-runs skip work."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from ase import Atoms

from molpre.qc.levels import LevelOfTheory

#: Coordinates are rounded to this many decimals of an Angstrom (1e-6 A) before hashing.
COORD_DECIMALS = 6


def charge_spin(atoms: Atoms) -> tuple[int, int]:
    """``(charge, spin multiplicity 2S+1)`` from ``atoms.info`` (defaults 0 and 1)."""
    charge = int(atoms.info.get("charge", 0))
    spin = int(atoms.info.get("spin", 1))
    return charge, spin


def content_key(atoms: Atoms, level: LevelOfTheory) -> str:
    """SHA-256 (hex, 32 chars) of elements, positions rounded to 1e-6 A, charge, spin, level.

    Positions ``[n_atoms, 3]`` in Angstrom; ``-0.0`` and ``0.0`` hash alike. The atom order
    matters (a permuted molecule is a different row).
    """
    charge, spin = charge_spin(atoms)
    pos = np.round(np.asarray(atoms.get_positions(), dtype=float), COORD_DECIMALS) + 0.0
    payload = {
        "numbers": [int(z) for z in atoms.numbers],
        "positions": [f"{x:.{COORD_DECIMALS}f}" for x in pos.ravel()],
        "charge": charge,
        "spin": spin,
        "level": level.result_fields(),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
