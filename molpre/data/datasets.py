"""Labeled conformers for finetuning: an ASE label store (.db) or an extxyz file.

A label store (``molpre label``) is an ASE database with one row per conformer; only rows
with ``status == "ok"`` carry an energy and are read. An extxyz file (``molpre export``, or
the QM9 sample) carries energies as calculator results or as ``atoms.info`` keys.

The target ``"energy"`` is the calculator energy (eV); any other key is a numeric
``atoms.info`` (or database key-value) entry whose unit is named by ``unit`` and converted
to eV with :func:`molpre.units.to_ev`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from molpre.runtime import file_sha256
from molpre.units import to_ev


class DatasetError(ValueError):
    """A label file that cannot be used (missing, empty, no such target)."""


@dataclass
class LabeledData:
    """Conformers with energies (eV) and optional forces (eV/Angstrom).

    ``atoms[i].info`` keeps the file's metadata; ``groups[i]`` names the molecule of row i
    (InChIKey when known, else ``mol_id``), so that splits keep conformers together.
    """

    atoms: list[Atoms]
    energy: np.ndarray  # [n] eV
    mol_ids: list[str]
    groups: list[str]
    forces: list[np.ndarray] | None = None  # n x [n_atoms, 3] eV/Angstrom
    source: str = "<memory>"
    sha256: str = ""
    target: str = "energy"
    unit: str = "eV"
    n_skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.atoms)

    def subset(self, index: Sequence[int]) -> LabeledData:
        """The rows ``index`` as a new :class:`LabeledData` (same source and hash)."""
        idx = [int(i) for i in index]
        return LabeledData(
            atoms=[self.atoms[i] for i in idx],
            energy=self.energy[idx],
            mol_ids=[self.mol_ids[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            forces=None if self.forces is None else [self.forces[i] for i in idx],
            source=self.source, sha256=self.sha256, target=self.target, unit=self.unit,
        )


def _read_target(atoms: Atoms, target: str) -> float | None:
    """The raw target value of one conformer, or None when it has none."""
    if target == "energy":
        calc = atoms.calc
        if calc is not None and "energy" in getattr(calc, "results", {}):
            return float(calc.results["energy"])
    value = atoms.info.get(target)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"target {target!r} is not numeric (found {value!r})") from None
    return value if np.isfinite(value) else None


def _read_forces(atoms: Atoms) -> np.ndarray | None:
    calc = atoms.calc
    if calc is not None and "forces" in getattr(calc, "results", {}):
        return np.asarray(calc.results["forces"], dtype=float)
    if "forces" in atoms.arrays:
        return np.asarray(atoms.arrays["forces"], dtype=float)
    return None


def _group_of(atoms: Atoms, mol_id: str) -> str:
    key = atoms.info.get("inchikey")
    return str(key) if key else mol_id


def labeled_from_atoms(
    frames: Sequence[Atoms], target: str = "energy", unit: str = "eV", forces: bool = False,
    source: str = "<memory>", sha256: str | None = None,
) -> LabeledData:
    """Build :class:`LabeledData` from conformers; rows without the target are skipped."""
    keep, energy, force_list, mol_ids, groups, reasons = [], [], [], [], [], []
    for row, atoms in enumerate(frames):
        value = _read_target(atoms, target)
        if value is None:
            reasons.append(f"row {row}: no {target!r}")
            continue
        f = _read_forces(atoms) if forces else None
        if forces and f is None:
            reasons.append(f"row {row}: no forces")
            continue
        mol_id = str(atoms.info.get("mol_id", f"row{row}"))
        keep.append(atoms)
        energy.append(value)
        force_list.append(f)
        mol_ids.append(mol_id)
        groups.append(_group_of(atoms, mol_id))
    if not keep:
        raise DatasetError(f"no conformer in {source} has the target {target!r}")
    energy_ev = np.asarray(to_ev(np.asarray(energy, dtype=float), unit), dtype=float)
    forces_ev = [np.asarray(to_ev(f, unit)) for f in force_list] if forces else None
    digest = sha256 or _arrays_sha256(keep, energy_ev)
    return LabeledData(keep, energy_ev, mol_ids, groups, forces_ev, source, digest, target,
                       unit, len(reasons), reasons)


def _arrays_sha256(frames: Sequence[Atoms], energy: np.ndarray) -> str:
    digest = hashlib.sha256()
    for atoms in frames:
        digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
        digest.update(np.asarray(atoms.positions, dtype=np.float64).round(6).tobytes())
    digest.update(np.asarray(energy, dtype=np.float64).tobytes())
    return digest.hexdigest()


def read_frames(path: str | Path) -> list[Atoms]:
    """All conformers of a label file: ok rows of an ASE .db, or every frame of an extxyz."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    if path.suffix == ".db":
        return _read_db(path)
    import ase.io

    try:
        if path.suffix == ".gz":  # decompress once: ASE seeks, and seeking gzip is slow
            with gzip.open(path, "rt") as handle:
                text = io.StringIO(handle.read())
            return ase.io.read(text, index=":", format="extxyz")
        return ase.io.read(path, index=":", format="extxyz")
    except Exception as err:  # ASE raises many types for a malformed file
        raise DatasetError(f"cannot read {path} as extxyz: {err}") from err


def _read_db(path: Path) -> list[Atoms]:
    """The ok rows of a label store (molpre.data.store keeps charge and key-value pairs)."""
    from molpre.data.store import read_labels

    return read_labels(path)


def load_labeled(
    path: str | Path, target: str = "energy", unit: str = "eV", forces: bool = False
) -> LabeledData:
    """Load a label store (.db) or an extxyz (.extxyz, .xyz, .gz) as :class:`LabeledData`.

    Args:
        path: the label file.
        target: ``"energy"`` (calculator energy, eV) or a numeric ``atoms.info`` key.
        unit: the target's unit (eV, hartree, kcal/mol, ...), converted to eV.
        forces: also read forces (same energy unit per Angstrom); rows without are skipped.
    """
    to_ev(1.0, unit)  # fail early on an unknown unit
    frames = read_frames(path)
    if not frames:
        raise DatasetError(f"{path} holds no labeled conformer (no status=='ok' row)")
    return labeled_from_atoms(frames, target, unit, forces, source=str(path),
                              sha256=file_sha256(path))
