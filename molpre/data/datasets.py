"""Labeled conformers for finetuning: an ASE label store (.db) or an extxyz file.

A label store (``molpre label``) is an ASE database with one row per conformer; only rows
with ``status == "ok"`` carry an energy and are read. An extxyz file (``molpre export``, or
the QM9 sample) carries energies as calculator results or as ``atoms.info`` keys.

Which values are read, and in which unit, is the target spec's business (molpre.targets):
each value is converted once, here, into molpre units (eV, Debye, Angstrom^3).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from molpre.runtime import file_sha256
from molpre.targets import Source, TargetError, TargetSpec, get_target, parse_targets


class DatasetError(ValueError):
    """A label file that cannot be used (missing, empty, no such target)."""


@dataclass
class LabeledData:
    """Conformers with labels in molpre units and optional forces (eV/Angstrom).

    ``labels[name]`` is ``[n]`` (scalars, or vector magnitudes) or ``[n, 3]`` (vectors) for
    each target of ``targets`` (registry names, molpre.targets). ``atoms[i].info`` keeps the
    file's metadata; ``groups[i]`` names the molecule of row i (InChIKey when known, else
    ``mol_id``), so that splits keep conformers together.
    """

    atoms: list[Atoms]
    labels: dict[str, np.ndarray]
    mol_ids: list[str]
    groups: list[str]
    forces: list[np.ndarray] | None = None  # n x [n_atoms, 3] eV/Angstrom
    source: str = "<memory>"
    sha256: str = ""
    specs: list[TargetSpec] = field(default_factory=lambda: [get_target("energy")])
    n_skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def targets(self) -> list[str]:
        """Registry names of the targets, in order (``["energy", "gap"]``)."""
        return [s.name for s in self.specs]

    @property
    def energy(self) -> np.ndarray:
        """``[n]`` eV: the labels of the ``energy`` target."""
        if "energy" not in self.labels:
            raise DatasetError(f"{self.source} was read for {self.targets}, which has no energy")
        return self.labels["energy"]

    def subset(self, index: Sequence[int]) -> LabeledData:
        """The rows ``index`` as a new :class:`LabeledData` (same source and hash)."""
        idx = [int(i) for i in index]
        return LabeledData(
            atoms=[self.atoms[i] for i in idx],
            labels={k: v[idx] for k, v in self.labels.items()},
            mol_ids=[self.mol_ids[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            forces=None if self.forces is None else [self.forces[i] for i in idx],
            source=self.source, sha256=self.sha256, specs=self.specs,
        )


def _read_forces(atoms: Atoms, spec: TargetSpec) -> np.ndarray | None:
    """``[n_atoms, 3]`` eV/Angstrom as the forces ``spec`` reads them, or None."""
    value = _read_values(spec, atoms)
    return None if value is None else np.asarray(value, dtype=float).reshape(-1, 3)


def _group_of(atoms: Atoms, mol_id: str) -> str:
    key = atoms.info.get("inchikey")
    return str(key) if key else mol_id


def frame_groups(frames: Sequence[Atoms]) -> list[str]:
    """The molecule group of each frame (InChIKey info, else mol_id, else ``row<i>``): the
    key that keeps a molecule's rows on one side of a split (molpre.data.splits)."""
    return [_group_of(a, str(a.info.get("mol_id", f"row{i}"))) for i, a in enumerate(frames)]


def _read_values(spec: TargetSpec, atoms: Atoms):
    try:
        return spec.read(atoms)
    except TargetError as err:
        raise DatasetError(str(err)) from None


def labeled_from_atoms(
    frames: Sequence[Atoms], target: str | Sequence[str] = "energy", unit: str | None = None,
    forces: bool = False, source: str = "<memory>", sha256: str | None = None,
    forces_key: str | None = None,
) -> LabeledData:
    """Build :class:`LabeledData` from conformers; rows without every target are skipped.

    Args:
        target: a registered target or data key (molpre.targets), or several (``"energy,gap"``);
            ``energy=energy_ev[eV]`` reads a key of the file (molpre.targets.keys).
        unit: the stored unit of a single target (None: the registry's for the frame).
        forces: also read forces (the energy's stored unit per Angstrom).
        forces_key: the ``atoms.arrays`` key holding them (None: calculator or ``forces``).
    """
    try:
        specs = parse_targets(target, unit)
    except TargetError as err:
        raise DatasetError(str(err)) from None
    force_spec = _forces_spec(specs, forces_key) if forces else None
    keep, values, force_list, mol_ids, groups, reasons = [], [], [], [], [], []
    for row, atoms in enumerate(frames):
        row_values = [_read_values(s, atoms) for s in specs]
        missing = [s.name for s, v in zip(specs, row_values, strict=True) if v is None]
        if missing:
            reasons.append(f"row {row}: no {missing[0]!r}")
            continue
        f = _read_forces(atoms, force_spec) if forces else None
        if forces and f is None:
            reasons.append(f"row {row}: no forces" + (f" ({forces_key!r})" if forces_key else ""))
            continue
        mol_id = str(atoms.info.get("mol_id", f"row{row}"))
        keep.append(atoms)
        values.append(row_values)
        force_list.append(f)
        mol_ids.append(mol_id)
        groups.append(_group_of(atoms, mol_id))
    if not keep:
        raise DatasetError(f"no conformer in {source} has the target {target!r} "
                           f"({reasons[0] if reasons else 'empty'})")
    labels = {s.name: s.kind.stack([v[k] for v in values]) for k, s in enumerate(specs)}
    digest = sha256 or _arrays_sha256(keep, labels)
    return LabeledData(keep, labels, mol_ids, groups, force_list if forces else None, source,
                       digest, specs, len(reasons), reasons)


def every_row_has_forces(data: LabeledData, forces_key: str | None = None) -> bool:
    """Whether ``data`` fits forces: it carries them, or its energy target is there and every
    row's conformer holds forces (calculator results, or ``atoms.arrays[forces_key]``)."""
    if data.forces is not None:
        return True
    if "energy" not in data.targets:
        return False
    spec = _forces_spec(data.specs, forces_key)
    return all(_read_forces(atoms, spec) is not None for atoms in data.atoms)


def _forces_spec(specs: list[TargetSpec], key: str | None = None) -> TargetSpec:
    """The ``forces`` target read in the energy's stored unit per Angstrom (forces are the
    energy's gradient), from ``key`` when given (an ``atoms.arrays`` name, or ``calc:NAME``
    for a calculator result); DatasetError without the energy among ``specs``."""
    energy = next((s for s in specs if s.name == "energy"), None)
    if energy is None:
        raise DatasetError("forces need the energy target")
    spec = get_target("forces")
    if key is not None:
        where = key if key.startswith("calc:") else f"arrays:{key}"
        spec = dataclasses.replace(spec, sources=(Source(where, spec.unit),))
    return spec.with_unit(f"{energy.sources[0].unit}/angstrom", every_source=True)


def _arrays_sha256(frames: Sequence[Atoms], labels: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for atoms in frames:
        digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
        digest.update(np.asarray(atoms.positions, dtype=np.float64).round(6).tobytes())
    for name in sorted(labels):
        digest.update(name.encode())
        digest.update(np.asarray(labels[name], dtype=np.float64).tobytes())
    return digest.hexdigest()


def read_frames(path: str | Path, limit: int | None = None) -> list[Atoms]:
    """Conformers of a label file (the first ``limit`` when given): the ok rows of an ASE .db
    label store, or the frames of an extxyz (.extxyz, .xyz, optionally .gz)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    if path.suffix == ".db":
        return _read_db(path)[:limit]
    import ase.io

    index = ":" if limit is None else f":{int(limit)}"
    try:
        if path.suffix == ".gz":  # decompress once: ASE seeks, and seeking gzip is slow
            with gzip.open(path, "rt") as handle:
                text = io.StringIO(handle.read())
            return ase.io.read(text, index=index, format="extxyz")
        return ase.io.read(path, index=index, format="extxyz")
    except Exception as err:  # ASE raises many types for a malformed file
        raise DatasetError(f"cannot read {path} as extxyz: {err}") from err


def _read_db(path: Path) -> list[Atoms]:
    """The ok rows of a label store (molpre.data.store keeps charge and key-value pairs)."""
    from molpre.data.store import read_labels

    return read_labels(path)


def load_labeled(
    path: str | Path, target: str | Sequence[str] = "energy", unit: str | None = None,
    forces: bool = False,
) -> LabeledData:
    """Load a label store (.db) or an extxyz (.extxyz, .xyz, .gz) as :class:`LabeledData`.

    Args:
        path: the label file.
        target: registered target(s) or data key(s), see molpre.targets (``"energy"``:
            calculator energy, eV; ``"u0_atom"``: QM9's atomization energy, kcal/mol).
        unit: the stored unit of a single target (eV, hartree, kcal/mol, debye, bohr^3, ...);
            None uses the registry's unit for the file's convention.
        forces: also read forces (same energy unit per Angstrom); rows without are skipped.
    """
    try:
        parse_targets(target, unit)  # fail early on an unknown target or unit
    except TargetError as err:
        raise DatasetError(str(err)) from None
    frames = read_frames(path)
    if not frames:
        raise DatasetError(f"{path} holds no labeled conformer (no status=='ok' row)")
    return labeled_from_atoms(frames, target, unit, forces, source=str(path),
                              sha256=file_sha256(path))
