"""Cheap-level labels read from label stores or extxyz files, for delta learning.

The transform itself (fit, remove, add back) is :mod:`molpre.delta`; this module reads what
it needs when the cheap level was computed elsewhere (``molpre label --method gfn2-xtb``):
energies (eV) and, where stored, forces (eV/Angstrom), matched to labeled rows by ``mol_id``
(one conformer per molecule, as in QM9). A molecule with several different cheap energies
is refused, not guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molpre.data.datasets import DatasetError, LabeledData, read_frames
from molpre.runtime import file_sha256

#: Relative difference above which two cheap energies of one mol_id are "different".
_SAME = 1e-9


@dataclass(frozen=True)
class CheapEnergies:
    """Total energies (eV) at the cheap level, by mol_id, with where they came from, and
    forces ``[n_atoms, 3]`` eV/Angstrom by mol_id where the files have them."""

    energies: dict[str, float]
    source: str
    sha256: str
    level: str
    forces: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.energies)


def _energy_of(atoms) -> float | None:
    calc = atoms.calc
    if calc is not None and "energy" in getattr(calc, "results", {}):
        return float(calc.results["energy"])
    value = atoms.info.get("energy")
    return None if value is None else float(value)


def read_cheap_energies(paths: str | Path | Sequence[str | Path]) -> CheapEnergies:
    """Cheap-level energies (eV) from label stores (ok rows) or extxyz files, by mol_id.

    Several files are merged (e.g. the training pool's store and the test set's store).
    Raises DatasetError for a missing file, a row without mol_id or energy, a mol_id with
    two different energies, or files at different levels of theory.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    energies: dict[str, float] = {}
    forces: dict[str, np.ndarray] = {}
    levels: set[str] = set()
    for path in paths:
        for atoms in read_frames(path):
            mol_id, energy = atoms.info.get("mol_id"), _energy_of(atoms)
            if mol_id is None or energy is None:
                raise DatasetError(f"{path}: every row needs a mol_id and an energy")
            if "level" in atoms.info:
                levels.add(str(atoms.info["level"]))
            results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
            if results.get("forces") is not None:
                forces[str(mol_id)] = np.asarray(results["forces"], dtype=float)
            old = energies.setdefault(str(mol_id), energy)
            if abs(old - energy) > _SAME * max(1.0, abs(energy)):
                raise DatasetError(f"{path}: mol_id {mol_id} has two cheap energies "
                                   f"({old:.6f} and {energy:.6f} eV); delta learning matches "
                                   "one conformer per mol_id")
    if len(levels) > 1:
        raise DatasetError(f"cheap energies at several levels of theory: {sorted(levels)}")
    digest = "+".join(file_sha256(p) for p in paths)
    return CheapEnergies(energies, ",".join(str(p) for p in paths), digest,
                         levels.pop() if levels else "unknown", forces)


def align(data: LabeledData, cheap: CheapEnergies) -> np.ndarray:
    """The cheap energy of every row of ``data`` ``[n]`` eV; DatasetError names what is missing."""
    missing = [m for m in data.mol_ids if m not in cheap.energies]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(data)} molecules of {data.source} have no "
                           f"cheap-level energy in {cheap.source} (first: {missing[:3]}); "
                           "delta learning needs it for every molecule, test set included")
    return np.array([cheap.energies[m] for m in data.mol_ids], dtype=np.float64)
