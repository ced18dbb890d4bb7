"""Delta learning as one boundary transform (SchNetPack's RemoveOffsets / AddOffsets pair).

A delta model learns the expensive label minus a cheap level of the same geometry
(Ramakrishnan et al., JCTC 2015)::

    energy_delta = energy - s * (E_cheap - sum_Z o_Z)          (eV)
    forces_delta = forces - s * F_cheap                        (eV/Angstrom, where both have them)

``o`` is the per-element least-squares fit of the cheap energies (cheap energies only, so
every molecule may enter it) and ``s`` one scale fitted with per-element constants on the
training labels only. The model's own per-element fit absorbs the constants. The
:class:`Delta` is fitted once at the data boundary (:func:`fit_delta`, by finetune and the
study's children), removed there (:meth:`Delta.remove`), stored in the model's checkpoint
(``meta["delta"]``) and added back wherever the model predicts (:meth:`Delta.add` in the
Predictor, ``molpre evaluate`` and the ASE calculator, which compute the cheap level for
every geometry they see). Any level works: GFN2-xTB (3.5 ms a QM9 molecule), MMFF94 or a
PySCF level (about a second for HF/STO-3G).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from molpre.data.datasets import DatasetError, LabeledData


@dataclass(frozen=True)
class CheapLabels:
    """The cheap level of every row of a dataset: energies ``[n]`` eV and, when the level
    gave them for every row, forces (one ``[n_atoms, 3]`` eV/Angstrom array per row)."""

    level: str
    energies: np.ndarray
    forces: list[np.ndarray] | None = None
    source: str = ""
    sha256: str = ""

    def subset(self, rows: Sequence[int]) -> CheapLabels:
        rows = list(rows)
        forces = [self.forces[i] for i in rows] if self.forces is not None else None
        return dataclasses.replace(self, energies=self.energies[rows], forces=forces)


@dataclass(frozen=True)
class Delta:
    """What a delta model removes from its labels and adds to its outputs (see the module
    docstring): the cheap ``level`` (a level tag: ``gfn2-xtb``, ``hf/sto-3g``), the scale
    ``s``, the per-element offsets ``{Z: eV}`` of the cheap energies, and whether forces
    are transformed too."""

    level: str
    scale: float
    offsets: dict[int, float]
    forces: bool = False

    def baseline(self, numbers: np.ndarray, cheap_energy: float) -> float:
        """``s * (E_cheap - sum_Z o_Z)`` eV for one geometry; KeyError for an element the
        offsets never saw."""
        return self.scale * (float(cheap_energy) - sum(self.offsets[int(z)] for z in numbers))

    def baselines(self, data: LabeledData, cheap: CheapLabels) -> np.ndarray:
        """``[n]`` eV: :meth:`baseline` of every row."""
        return np.array([self.baseline(a.numbers, e) for a, e in
                         zip(data.atoms, cheap.energies, strict=True)], dtype=np.float64)

    def remove(self, data: LabeledData, cheap: CheapLabels) -> LabeledData:
        """``data`` with its energy (and, with :attr:`forces`, its forces) labels minus the
        cheap level; every other target unchanged."""
        labels = dict(data.labels)
        labels["energy"] = data.energy - self.baselines(data, cheap)
        forces = data.forces
        if self.forces:
            forces = [f - self.scale * c for f, c in zip(data.forces, cheap.forces, strict=True)]
        return dataclasses.replace(data, labels=labels, forces=forces)

    def add(self, energy: float, numbers: np.ndarray, cheap_energy: float) -> float:
        """A model's energy output (eV) plus the cheap level: the prediction."""
        return float(energy) + self.baseline(numbers, cheap_energy)

    def add_forces(self, forces: np.ndarray, cheap_forces: np.ndarray) -> np.ndarray:
        """A model's forces ``[n, 3]`` eV/Angstrom plus ``s`` times the cheap level's."""
        return np.asarray(forces) + self.scale * np.asarray(cheap_forces)

    @property
    def level_of_theory(self):
        from molpre.qc.levels import parse_level

        return parse_level(self.level)

    def to_meta(self) -> dict:
        return {"level": self.level, "scale": self.scale, "forces": self.forces,
                "offsets": {str(z): v for z, v in self.offsets.items()}}

    @classmethod
    def from_meta(cls, meta: dict | None) -> Delta | None:
        """The checkpoint's ``delta`` entry, or None; reads the older form whose ``level``
        was a dict of LevelOfTheory fields."""
        if not meta:
            return None
        level = meta["level"]
        if isinstance(level, dict):
            from molpre.qc.levels import LevelOfTheory

            level = LevelOfTheory.from_dict(level).tag
        return cls(str(level), float(meta["scale"]),
                   {int(z): float(v) for z, v in meta["offsets"].items()},
                   bool(meta.get("forces", False)))


def element_counts(numbers: Sequence[np.ndarray], elements: Sequence[int]) -> np.ndarray:
    """``[n_molecules, n_elements]`` counts of each element."""
    return np.array([[np.count_nonzero(z == e) for e in elements] for z in numbers], dtype=float)


def element_offsets(numbers: Sequence[np.ndarray], energies: np.ndarray) -> dict[int, float]:
    """Per-element least-squares fit ``{Z: eV}`` of ``energies`` (cheap energies only)."""
    elements = sorted({int(z) for zs in numbers for z in zs})
    coef, *_ = np.linalg.lstsq(element_counts(numbers, elements), energies, rcond=None)
    return {z: float(c) for z, c in zip(elements, coef, strict=True)}


def fit_scale(numbers: Sequence[np.ndarray], energy: np.ndarray, cheap: np.ndarray) -> float:
    """``s`` of ``energy ~ sum_Z n_Z b_Z + s * cheap`` by least squares (training rows only;
    eV in, dimensionless out)."""
    if len(energy) < 2:
        raise DatasetError("fitting the delta scale needs at least 2 training labels")
    elements = sorted({int(z) for zs in numbers for z in zs})
    design = np.column_stack([element_counts(numbers, elements), cheap])
    coef, *_ = np.linalg.lstsq(design, energy, rcond=None)
    return float(coef[-1])


def fit_delta(data: LabeledData, cheap: CheapLabels, train_rows: Sequence[int],
              scale: float | None = None, forces: bool = False) -> Delta:
    """The Delta of ``data``: offsets from every row's cheap energy, ``s`` from
    ``train_rows`` (train + validation, never test) unless given; ``forces`` needs the
    cheap level's forces for every row."""
    if forces and cheap.forces is None:
        raise DatasetError(f"delta learning of forces needs the cheap level's forces "
                           f"({cheap.level} from {cheap.source} has none): label it with "
                           "--forces, or fit energies only")
    numbers = [a.numbers for a in data.atoms]
    offsets = element_offsets(numbers, cheap.energies)
    if scale is None:
        rows = np.asarray(train_rows)
        centered = cheap.energies - np.array([sum(offsets[int(z)] for z in zs) for zs in numbers])
        scale = fit_scale([numbers[i] for i in rows], data.energy[rows], centered[rows])
    return Delta(cheap.level, float(scale), offsets, bool(forces))


def predicted_with_delta(delta: Delta, energies: np.ndarray, data: LabeledData,
                         cheap: CheapLabels) -> np.ndarray:
    """Model outputs ``[n]`` eV on the rows of ``data`` plus the cheap level: predictions."""
    return np.asarray(energies, dtype=np.float64) + delta.baselines(data, cheap)


# -- where cheap labels come from -------------------------------------------------------------


def is_level(source: str) -> bool:
    """True when ``source`` names a level of theory (``gfn2-xtb``, ``hf/sto-3g``) rather
    than label files (an existing path wins: a file named like a level is a file)."""
    from pathlib import Path

    from molpre.qc.levels import LevelError, parse_level

    if any(Path(p.strip()).exists() for p in source.split(",") if p.strip()):
        return False
    try:
        parse_level(source)
    except LevelError:
        return False
    return True


def cheap_labels(data: LabeledData, source: str | Sequence[str], *, cache: str | None = None,
                 forces: bool = False, workers: int = 1) -> CheapLabels:
    """The cheap level of every row of ``data``.

    ``source``: a level (``gfn2-xtb``, ``mmff94``, ``hf/sto-3g``), computed for every row
    that the label store ``cache`` does not already hold (content-keyed; ``workers``
    processes), or label stores / extxyz files holding every molecule's cheap energy,
    matched by ``mol_id`` (one geometry per molecule). DatasetError names what is missing.
    """
    if isinstance(source, str) and is_level(source):
        if cache is None:
            raise DatasetError(f"computing the cheap level {source} needs a label store to "
                               "cache it in")
        return _computed(data, source, cache, forces, workers)
    paths = [p.strip() for p in source.split(",")] if isinstance(source, str) else list(source)
    return _read(data, [p for p in paths if p])


def _computed(data: LabeledData, source: str, cache: str, forces: bool,
              workers: int) -> CheapLabels:
    from molpre.data.store import iter_rows, open_store, row_to_atoms
    from molpre.qc.content_keys import content_key
    from molpre.qc.levels import parse_level
    from molpre.qc.runner import label_conformers
    from molpre.runtime import file_sha256

    level = parse_level(source)
    label_conformers(list(data.atoms), cache, level, forces=forces, workers=workers)
    stored = {row.key: row_to_atoms(row) for row in iter_rows(open_store(cache, write=False), "ok")}
    keys = [content_key(a, level) for a in data.atoms]
    missing = [data.mol_ids[i] for i, k in enumerate(keys) if k not in stored]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(data)} molecules failed at {level.tag} "
                           f"(first: {missing[:3]}; reasons in {cache}); delta learning needs "
                           "the cheap level of every molecule")
    energies = np.array([stored[k].calc.results["energy"] for k in keys], dtype=np.float64)
    if forces and any("forces" not in stored[k].calc.results for k in keys):
        raise DatasetError(f"{cache} holds {level.tag} energies without forces (labeled "
                           "without forces before): give another cache file, or delete it")
    frc = ([np.asarray(stored[k].calc.results["forces"]) for k in keys] if forces else None)
    return CheapLabels(level.tag, energies, frc, cache, file_sha256(cache))


def _read(data: LabeledData, paths: list[str]) -> CheapLabels:
    from molpre.data.multifidelity import align, read_cheap_energies

    cheap = read_cheap_energies(paths)
    energies = align(data, cheap)
    forces = None
    if cheap.forces and all(m in cheap.forces for m in data.mol_ids):
        forces = [cheap.forces[m] for m in data.mol_ids]
    return CheapLabels(cheap.level, energies, forces, cheap.source, cheap.sha256)
