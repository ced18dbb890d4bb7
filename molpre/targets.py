"""Target specs: what a model can learn, read once from a label file into molpre units.

A :class:`TargetSpec` says where a property lives in a frame (its :class:`Source` keys and
the unit each is stored in), its kind, the unit it has inside molpre, and the unit its
errors are reported in. The kinds fix the head (molpre.models.heads) and the loss:

* ``extensive``: a sum of atomic terms on top of per-element reference values fitted by least
  squares on the training set (energies, polarizability); ``forces`` adds -dE/dpos.
* ``intensive``: the mean of atomic terms plus the training mean, no reference values
  (orbital energies, the gap): duplicating a molecule far away leaves it unchanged.
* ``vector``: equivariant, atomic charges times centred positions plus atomic dipoles from the
  encoder's l=1 features (the dipole). Labels are vectors where the file has the vector, else
  magnitudes (QM9's ``mu``), and the model's vector is compared by its norm.

Units inside molpre: energies eV, dipoles Debye, polarizabilities Angstrom^3.

A name given to a finetune is a registered target (``energy``, ``homo``, ``lumo``, ``gap``,
``dipole``, ``alpha``) or a data key in :data:`KEYS` (QM9's ``u0_atom``, ``mu``, ...), which
picks the target and the stored unit. The same key can mean different units in different
files: QM9's extxyz stores ``homo`` in Hartree, molpre's label store in eV. A frame is read
with the QM9 convention when its info has QM9's signature keys (``zpve`` and ``u0``),
else with molpre's; an explicit ``unit`` overrides both. Adding a target is one entry in
:data:`TARGETS` (or :func:`register`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase import units as ase_units

from molpre.units import ENERGY_UNITS_TO_EV

KINDS = ("extensive", "intensive", "vector")
#: Info keys that mark a frame of the QM9 extxyz (values in QM9's units).
QM9_SIGNATURE = frozenset({"zpve", "u0"})
DEBYE_PER_E_ANGSTROM: float = 1.0 / float(ase_units.Debye)  # 4.8032 D per e*Angstrom
BOHR3_TO_ANGSTROM3: float = float(ase_units.Bohr) ** 3  # 0.148185 Angstrom^3

#: ``{molpre unit: {file unit (lower case): factor into the molpre unit}}``.
CONVERSIONS: dict[str, dict[str, float]] = {
    "eV": ENERGY_UNITS_TO_EV,
    "Debye": {"debye": 1.0, "d": 1.0, "e*angstrom": DEBYE_PER_E_ANGSTROM,
              "au": DEBYE_PER_E_ANGSTROM * float(ase_units.Bohr), "e*bohr": DEBYE_PER_E_ANGSTROM * float(ase_units.Bohr)},
    "Angstrom^3": {"angstrom^3": 1.0, "a^3": 1.0, "bohr^3": BOHR3_TO_ANGSTROM3, "au": BOHR3_TO_ANGSTROM3},
}


class TargetError(ValueError):
    """An unknown target name or unit, or a value that is not a number."""


def convert(value, unit: str, to: str):
    """``value`` (scalar or array) stored in ``unit`` expressed in the molpre unit ``to``."""
    table = CONVERSIONS[to]
    try:
        return value * table[unit.lower()]
    except KeyError:
        what = "energy unit" if to == "eV" else f"unit for a {to} quantity"
        raise TargetError(f"unknown {what} {unit!r}; use one of: {', '.join(sorted(table))}") from None


@dataclass(frozen=True)
class Source:
    """Where a value is stored: ``key`` of ``atoms.info`` (``calc:NAME`` for a calculator
    result), minus ``minus`` when given (``lumo - homo``), in ``unit``; ``convention`` is the
    file convention it applies to (``molpre``, ``qm9`` or ``any``)."""

    key: str
    unit: str
    convention: str = "any"
    minus: str | None = None

    def read(self, atoms: Atoms):
        """The raw value (float or ``[3]`` array) in ``unit``, or None when absent."""
        value = _raw(atoms, self.key)
        if value is None or self.minus is None:
            return value
        other = _raw(atoms, self.minus)
        return None if other is None else value - other


def _raw(atoms: Atoms, key: str):
    if key.startswith("calc:"):
        results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
        value = results.get(key[5:])
    else:
        value = atoms.info.get(key)
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TargetError(f"target key {key!r} is not numeric (found {value!r})") from None
    if not np.all(np.isfinite(array)):
        return None
    return float(array) if array.ndim == 0 else array


def convention(atoms: Atoms) -> str:
    """``"qm9"`` for a frame of the QM9 extxyz (its signature keys), else ``"molpre"``."""
    return "qm9" if QM9_SIGNATURE <= set(atoms.info) else "molpre"


@dataclass(frozen=True)
class TargetSpec:
    """One learnable property: name, kind, molpre unit, sources and report unit.

    ``metric_unit``/``metric_factor``: errors are reported as ``MAE * metric_factor`` in
    ``metric_unit`` (meV for energies). ``forces``: the extensive head may also give forces.
    """

    name: str
    kind: str
    unit: str
    sources: tuple[Source, ...]
    metric_unit: str
    metric_factor: float = 1.0
    forces: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TargetError(f"target {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.unit not in CONVERSIONS:
            raise TargetError(f"target {self.name!r}: unit must be one of {sorted(CONVERSIONS)}")

    @property
    def column(self) -> str:
        """The Predictor column: ``energy_ev``, ``gap_ev``, ``dipole_debye``, ``alpha_a3``."""
        return f"{self.name}_{_unit_slug(self.unit)}"

    @property
    def label_key(self) -> str:
        """Batch key of the label (``energy`` is molpre.data.keys.ENERGY)."""
        return self.name

    @property
    def output_key(self) -> str:
        """Model output key (``predicted_energy`` is molpre.data.keys.PREDICTED_ENERGY)."""
        return f"predicted_{self.name}"

    def metric_name(self, stat: str = "mae", prefix: str = "") -> str:
        """``{prefix}{stat}_{name}_{unit}`` (``test_mae_gap_mev``); the energy keeps the first
        version's names (``test_mae_mev``, ``val_mae_mev``)."""
        unit = _metric_slug(self.metric_unit)
        return f"{prefix}{stat}_{unit}" if self.name == "energy" else f"{prefix}{stat}_{self.name}_{unit}"

    def errors(self, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
        """``[n]`` signed errors in molpre units; vectors are compared by their norms."""
        pred, label = np.asarray(pred, dtype=float), np.asarray(label, dtype=float)
        if self.kind == "vector":
            pred = np.linalg.norm(pred, axis=-1) if pred.ndim == 2 else pred
            label = np.linalg.norm(label, axis=-1) if label.ndim == 2 else label
        return pred - label

    def read(self, atoms: Atoms):
        """The value of one frame in molpre units (float, or ``[3]`` for a vector), or None."""
        style = convention(atoms)
        for source in self.sources:
            if source.convention not in ("any", style):
                continue
            value = source.read(atoms)
            if value is not None:
                return convert(value, source.unit, self.unit)
        return None

    def with_unit(self, unit: str | None) -> TargetSpec:
        """This spec with every info-key source stored in ``unit`` (None: unchanged)."""
        if unit is None:
            return self
        convert(1.0, unit, self.unit)  # fail early on an unknown unit
        sources = tuple(s if s.key.startswith("calc:") else dataclasses.replace(s, unit=unit, convention="any")
                        for s in self.sources)
        return dataclasses.replace(self, sources=sources)


def _metric_slug(unit: str) -> str:
    return {"meV": "mev", "Debye": "debye", "Angstrom^3": "a3", "eV": "ev"}[unit]


def _unit_slug(unit: str) -> str:
    return {"eV": "ev", "Debye": "debye", "Angstrom^3": "a3"}[unit]


def _energy_like(name: str, kind: str, description: str) -> TargetSpec:
    """An orbital energy stored as eV by molpre and as Hartree by QM9."""
    return TargetSpec(name, kind, "eV", (Source(name, "eV", "molpre"), Source(name, "hartree", "qm9")),
                      "meV", 1000.0, description=description)


TARGETS: dict[str, TargetSpec] = {}


def register(spec: TargetSpec) -> TargetSpec:
    """Add (or replace) a target in the registry; returns it."""
    TARGETS[spec.name] = spec
    return spec


register(TargetSpec(
    "energy", "extensive", "eV", (Source("calc:energy", "eV"), Source("energy", "eV")), "meV", 1000.0,
    forces=True, description="total energy; forces as -dE/dpos"))
register(_energy_like("homo", "intensive", "highest occupied orbital energy"))
register(_energy_like("lumo", "intensive", "lowest unoccupied orbital energy"))
register(TargetSpec(
    "gap", "intensive", "eV",
    (Source("gap", "hartree", "qm9"), Source("gap", "eV", "molpre"),
     Source("lumo", "eV", "molpre", minus="homo"), Source("lumo", "hartree", "qm9", minus="homo")),
    "meV", 1000.0, description="HOMO-LUMO gap (lumo - homo where only those are stored)"))
register(TargetSpec(
    "dipole", "vector", "Debye",
    (Source("calc:dipole", "e*angstrom", "molpre"), Source("dipole_debye", "debye", "molpre"),
     Source("mu", "debye")),
    "Debye", 1.0, description="dipole moment vector (magnitude where only that is stored)"))
register(TargetSpec(
    "alpha", "extensive", "Angstrom^3", (Source("alpha", "bohr^3", "qm9"), Source("alpha", "angstrom^3", "molpre")),
    "Angstrom^3", 1.0, description="isotropic polarizability"))

#: Data keys that name a target and the unit they are stored in (QM9's extxyz keys).
KEYS: dict[str, tuple[str, str]] = {
    "u0_atom": ("energy", "kcal/mol"), "u298_atom": ("energy", "kcal/mol"),
    "h298_atom": ("energy", "kcal/mol"), "g298_atom": ("energy", "kcal/mol"),
    "u0": ("energy", "hartree"), "u298": ("energy", "hartree"), "h298": ("energy", "hartree"),
    "g298": ("energy", "hartree"), "e_elec": ("energy", "hartree"),
    "mu": ("dipole", "debye"), "dipole_debye": ("dipole", "debye"),
}


def get_target(name: str, unit: str | None = None) -> TargetSpec:
    """The spec for a target name or data key; ``unit`` overrides the stored unit.

    A data key (``u0_atom``) reads only that key: the spec keeps the target's name, kind and
    head (``energy``) with one source; so does a mapped target ``energy=energy_ev[eV]``
    (molpre.target_keys). Unknown names raise TargetError listing the known ones.
    """
    if "=" in name:
        from molpre.target_keys import mapped_target

        return mapped_target(name, unit)
    if name in TARGETS:
        return TARGETS[name].with_unit(unit)
    if name in KEYS:
        target, stored = KEYS[name]
        spec = dataclasses.replace(TARGETS[target], sources=(Source(name, stored),))
        return spec.with_unit(unit)
    known = ", ".join(sorted(TARGETS) + sorted(KEYS))
    raise TargetError(f"unknown target {name!r}; use one of: {known}, or map a key of your "
                      f"file in the config: target: {{name: energy, key: {name}, unit: eV}} "
                      f"(--target energy={name}[eV])")


def parse_targets(text: str | list[str] | tuple[str, ...], unit: str | None = None) -> list[TargetSpec]:
    """Specs for ``"u0_atom"``, ``"energy,gap"`` or a list of names (``unit`` applies to a
    single target only); two names for the same target are an error."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise TargetError("no target given")
    if unit is not None and len(names) > 1:
        raise TargetError("unit applies to a single target; use registered data keys for several")
    specs = [get_target(n, unit) for n in names]
    seen = [s.name for s in specs]
    if len(set(seen)) != len(seen):
        raise TargetError(f"targets {names} name the same property twice")
    return specs


def monitor_name(specs: list[TargetSpec]) -> str:
    """The validation metric that selects epochs: the one target's MAE (``val_mae_mev`` for
    the energy), or ``val_score`` (sum over targets of val MAE / loss scale) for several."""
    return specs[0].metric_name("mae", "val_") if len(specs) == 1 else "val_score"
