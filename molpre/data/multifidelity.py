"""Delta learning on a cheap level of theory (multi-fidelity; Ramakrishnan et al., JCTC 2015).

The expensive energy label ``y`` (eV) is modelled as ``s * E_cheap + f(molecule)``, where
``E_cheap`` is the total energy of the same geometry at a cheap PySCF level (HF/STO-3G costs
about a second per QM9 molecule here) and ``s`` is one scale fitted by least squares, together
with per-element constants, on the *training* labels only. A model (or a kernel) then learns
the residual target ``y - s * E_cheap``; its own per-element fit (atomref) absorbs the
constants, so a prediction is ``model(geometry) + s * E_cheap``. The cheap level must therefore
be computed for every molecule predicted, the test set included: that is the price of the
method, and it is why a delta study needs cheap energies for every row of its data.

Cheap energies are matched to the labeled rows by ``mol_id`` (one conformer per molecule,
as in QM9); a molecule with several different cheap energies is refused, not guessed.
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
    """Total energies (eV) at the cheap level, by mol_id, with where they came from."""

    energies: dict[str, float]
    source: str
    sha256: str
    level: str

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
    levels: set[str] = set()
    for path in paths:
        for atoms in read_frames(path):
            mol_id, energy = atoms.info.get("mol_id"), _energy_of(atoms)
            if mol_id is None or energy is None:
                raise DatasetError(f"{path}: every row needs a mol_id and an energy")
            if "level" in atoms.info:
                levels.add(str(atoms.info["level"]))
            old = energies.setdefault(str(mol_id), energy)
            if abs(old - energy) > _SAME * max(1.0, abs(energy)):
                raise DatasetError(f"{path}: mol_id {mol_id} has two cheap energies "
                                   f"({old:.6f} and {energy:.6f} eV); delta learning matches "
                                   "one conformer per mol_id")
    if len(levels) > 1:
        raise DatasetError(f"cheap energies at several levels of theory: {sorted(levels)}")
    digest = "+".join(file_sha256(p) for p in paths)
    return CheapEnergies(energies, ",".join(str(p) for p in paths), digest,
                         levels.pop() if levels else "unknown")


def align(data: LabeledData, cheap: CheapEnergies) -> np.ndarray:
    """The cheap energy of every row of ``data`` ``[n]`` eV; DatasetError names what is missing."""
    missing = [m for m in data.mol_ids if m not in cheap.energies]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(data)} molecules of {data.source} have no "
                           f"cheap-level energy in {cheap.source} (first: {missing[:3]}); "
                           "delta learning needs it for every molecule, test set included")
    return np.array([cheap.energies[m] for m in data.mol_ids], dtype=np.float64)


def element_counts(numbers: Sequence[np.ndarray], elements: Sequence[int]) -> np.ndarray:
    """``[n_molecules, n_elements]`` counts of each element."""
    return np.array([[np.count_nonzero(z == e) for e in elements] for z in numbers], dtype=float)


def element_offsets(numbers: Sequence[np.ndarray], cheap: np.ndarray) -> dict[int, float]:
    """Per-element least-squares fit of the cheap energies ``{Z: eV}`` (cheap energies only,
    no expensive label: the test set's may be used)."""
    elements = sorted({int(z) for zs in numbers for z in zs})
    coef, *_ = np.linalg.lstsq(element_counts(numbers, elements), cheap, rcond=None)
    return {z: float(c) for z, c in zip(elements, coef, strict=True)}


def center(numbers: Sequence[np.ndarray], cheap: np.ndarray,
           offsets: dict[int, float] | None = None) -> np.ndarray:
    """``cheap`` minus its per-element fit (``offsets``, default fitted here) ``[n]`` eV: the
    same information (the models refit per-element constants anyway) at atomization-energy
    magnitudes, so a float32 model never adds ~1e4 eV totals."""
    offsets = element_offsets(numbers, cheap) if offsets is None else offsets
    return np.asarray(cheap, dtype=np.float64) - np.array(
        [sum(offsets[int(z)] for z in zs) for zs in numbers])


@dataclass(frozen=True)
class DeltaBaseline:
    """What a delta model adds to its own output: ``scale * (E_cheap - sum_Z offsets[Z])`` eV,
    with ``E_cheap`` computed at ``level`` (a molpre.qc LevelOfTheory dict). The term has no
    per-element part (``offsets`` take it out), so the model's own atomref stays the target's
    per-element reference. Stored in the model's checkpoint meta under ``delta``."""

    level: dict
    scale: float
    offsets: dict[int, float]

    def to_meta(self) -> dict:
        return {"level": dict(self.level), "scale": self.scale,
                "offsets": {str(z): v for z, v in self.offsets.items()}}

    @classmethod
    def from_meta(cls, meta: dict | None) -> DeltaBaseline | None:
        if not meta:
            return None
        return cls(dict(meta["level"]), float(meta["scale"]),
                   {int(z): float(v) for z, v in meta["offsets"].items()})

    def term(self, numbers: np.ndarray, cheap_energy: float) -> float:
        """The baseline term (eV) of one molecule; KeyError for an element never fitted."""
        return self.scale * (cheap_energy - sum(self.offsets[int(z)] for z in numbers))


def level_from_tag(tag: str) -> dict:
    """The LevelOfTheory fields of a store's ``level`` tag (``hf/sto-3g/df``,
    ``b3lyp/6-31g(2df,p)/df/grid3``, ``gfn2-xtb``, ``mmff94``; the inverse of
    ``LevelOfTheory.tag``); DatasetError for a tag that does not parse (``unknown``: an
    extxyz without a level)."""
    from molpre.qc.levels import LevelError, parse_level

    try:
        return parse_level(tag).to_dict()
    except LevelError as err:
        raise DatasetError(f"{err}: delta learning needs cheap energies from a molpre label "
                           "store (they name their level)") from None


def fit_scale(numbers: Sequence[np.ndarray], energy: np.ndarray, cheap: np.ndarray) -> float:
    """The scale ``s`` of ``energy ~ sum_Z n_Z b_Z + s * cheap`` by least squares (rows given
    are the training labels only). Energies in eV; returns a dimensionless float."""
    if len(energy) < 2:
        raise DatasetError("fitting the delta scale needs at least 2 training labels")
    elements = sorted({int(z) for zs in numbers for z in zs})
    design = np.column_stack([element_counts(numbers, elements), cheap])
    coef, *_ = np.linalg.lstsq(design, energy, rcond=None)
    return float(coef[-1])


def make_delta(data: LabeledData, cheap: CheapEnergies, train_rows: np.ndarray,
               scale: float | None = None) -> tuple[LabeledData, float, dict[int, float]]:
    """``(delta data, s, offsets)`` for ``data``: its cheap energies matched and centered,
    ``s`` fitted on ``train_rows`` (train + validation, never test) unless given."""
    numbers = [a.numbers for a in data.atoms]
    raw = align(data, cheap)
    offsets = element_offsets(numbers, raw)
    centered = center(numbers, raw, offsets)
    if scale is None:
        rows = np.asarray(train_rows)
        scale = fit_scale([numbers[i] for i in rows], data.energy[rows], centered[rows])
    return delta_data(data, centered, float(scale)), float(scale), offsets


def delta_data(data: LabeledData, cheap: np.ndarray, scale: float) -> LabeledData:
    """``data`` with its energy labels replaced by ``energy - scale * cheap`` (eV).

    Only the ``energy`` target is changed; forces are refused (a cheap level's forces would
    be needed for them, and are not read here).
    """
    if data.forces is not None:
        raise DatasetError("delta learning of forces needs the cheap level's forces: fit "
                           "energies only (forces: false)")
    labels = dict(data.labels)
    labels["energy"] = data.energy - scale * np.asarray(cheap, dtype=np.float64)
    return dataclasses.replace(data, labels=labels)
