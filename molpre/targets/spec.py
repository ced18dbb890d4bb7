"""TargetSpec: one learnable property as data (where it is stored, its unit, its kind).

A spec says where a property lives in a frame (its :class:`Source` keys and the unit each
is stored in), its kind (a :class:`molpre.targets.kinds.Kind`, which owns the behaviour),
the unit it has inside molpre and the units its errors are reported in.

Units inside molpre: energies eV, forces eV/Angstrom, dipoles Debye, polarizabilities
Angstrom^3. The same key can mean different units in different files: QM9's extxyz stores
``homo`` in Hartree, molpre's label store in eV. A frame is read with the QM9 convention
when its info has QM9's signature keys (``zpve`` and ``u0``), else with molpre's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from molpre.errors import TargetError
from molpre.targets.kinds import Kind, get_kind
from molpre.units import (
    BOHR3_TO_ANGSTROM3,
    BOHR_TO_ANGSTROM,
    DEBYE_PER_E_ANGSTROM,
    ENERGY_UNITS_TO_EV,
)

#: Info keys that mark a frame of the QM9 extxyz (values in QM9's units).
QM9_SIGNATURE = frozenset({"zpve", "u0"})

#: ``{molpre unit: {file unit (lower case): factor into the molpre unit}}``.
CONVERSIONS: dict[str, dict[str, float]] = {
    "eV": ENERGY_UNITS_TO_EV,
    "eV/Angstrom": {**{f"{u}/angstrom": f for u, f in ENERGY_UNITS_TO_EV.items()},
                    "hartree/bohr": ENERGY_UNITS_TO_EV["hartree"] / BOHR_TO_ANGSTROM},
    "Debye": {"debye": 1.0, "d": 1.0, "e*angstrom": DEBYE_PER_E_ANGSTROM,
              "au": DEBYE_PER_E_ANGSTROM * BOHR_TO_ANGSTROM,
              "e*bohr": DEBYE_PER_E_ANGSTROM * BOHR_TO_ANGSTROM},
    "Angstrom^3": {"angstrom^3": 1.0, "a^3": 1.0, "bohr^3": BOHR3_TO_ANGSTROM3,
                   "au": BOHR3_TO_ANGSTROM3},
}
#: Short forms of units in column and metric names.
SLUGS = {"eV": "ev", "meV": "mev", "kcal/mol": "kcal", "Debye": "debye", "Angstrom^3": "a3",
         "eV/Angstrom": "ev_per_a", "meV/Angstrom": "mev_per_a"}


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
    result, ``arrays:NAME`` for a per-atom array), minus ``minus`` when given
    (``lumo - homo``), in ``unit``; ``convention`` is the file convention it applies to
    (``molpre``, ``qm9`` or ``any``)."""

    key: str
    unit: str
    convention: str = "any"
    minus: str | None = None

    def read(self, atoms: Atoms):
        """The raw value (float or array) in ``unit``, or None when absent."""
        value = _raw(atoms, self.key)
        if value is None or self.minus is None:
            return value
        other = _raw(atoms, self.minus)
        return None if other is None else value - other


def _lookup(atoms: Atoms, key: str):
    if key.startswith("calc:"):
        results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
        return results.get(key[5:])
    if key.startswith("arrays:"):
        return atoms.arrays.get(key[7:])
    return atoms.info.get(key)


def _raw(atoms: Atoms, key: str):
    value = _lookup(atoms, key)
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
    """One learnable property: name, kind, molpre unit, sources and report units.

    ``kind``: a registered kind name (``extensive``, ``intensive``, ``vector``, ``forces``)
    or a :class:`Kind`; stored as the Kind, which compares equal to its name.
    ``metric_unit``/``metric_factor``: errors are reported as ``MAE * metric_factor`` in
    ``metric_unit`` (meV for energies); ``extra_units`` adds ``(unit, factor)`` pairs
    (the energy's kcal/mol). ``headline_unit``: the unit a study reports (default
    ``metric_unit``). ``metric_format``: how metric names are spelled (``{prefix}``,
    ``{stat}``, ``{name}``, ``{unit}``). ``forces``: the extensive head may also give
    forces (the ``forces`` target, its gradient).
    """

    name: str
    kind: Kind | str
    unit: str
    sources: tuple[Source, ...]
    metric_unit: str
    metric_factor: float = 1.0
    forces: bool = False
    description: str = ""
    extra_units: tuple[tuple[str, float], ...] = ()
    headline_unit: str | None = None
    metric_format: str = "{prefix}{stat}_{name}_{unit}"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", get_kind(self.kind))
        except KeyError as err:
            raise TargetError(f"target {self.name!r}: {err.args[0]}") from None
        if self.unit not in CONVERSIONS:
            raise TargetError(f"target {self.name!r}: unit must be one of {sorted(CONVERSIONS)}")
        units = [u for u, _ in self.report_units]
        if self.headline_unit is not None and self.headline_unit not in units:
            raise TargetError(f"target {self.name!r}: headline_unit must be one of {units}")

    @property
    def column(self) -> str:
        """The Predictor column: ``energy_ev``, ``gap_ev``, ``dipole_debye``, ``alpha_a3``."""
        return f"{self.name}_{SLUGS[self.unit]}"

    @property
    def label_key(self) -> str:
        """Batch key of the label (``energy`` is molpre.data.keys.ENERGY)."""
        return self.name

    @property
    def output_key(self) -> str:
        """Model output key (``predicted_energy`` is molpre.data.keys.PREDICTED_ENERGY)."""
        return f"predicted_{self.name}"

    @property
    def report_units(self) -> tuple[tuple[str, float], ...]:
        """``((unit, factor from the molpre unit), ...)``: every unit errors are reported in."""
        return ((self.metric_unit, self.metric_factor), *self.extra_units)

    @property
    def headline(self) -> tuple[str, float]:
        """``(unit, factor)`` of the headline unit (what a study's tables are in)."""
        want = self.headline_unit or self.metric_unit
        return next(u for u in self.report_units if u[0] == want)

    def metric_name(self, stat: str = "mae", prefix: str = "", unit: str | None = None) -> str:
        """``test_mae_gap_mev``: spelled by ``metric_format`` (the energy keeps the first
        version's ``test_mae_mev``); ``unit`` one of :attr:`report_units` (default the first)."""
        slug = SLUGS[unit or self.metric_unit]
        return self.metric_format.format(prefix=prefix, stat=stat, name=self.name, unit=slug)

    def errors(self, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
        """``[n]`` signed errors in molpre units, as the kind compares them."""
        return self.kind.errors(pred, label)

    def read(self, atoms: Atoms):
        """The value of one frame in molpre units (float, or an array), or None."""
        style = convention(atoms)
        for source in self.sources:
            if source.convention not in ("any", style):
                continue
            value = source.read(atoms)
            if value is not None:
                return convert(value, source.unit, self.unit)
        return None

    def with_unit(self, unit: str | None, every_source: bool = False) -> TargetSpec:
        """This spec with every info-key source (``every_source``: every source, calculator
        results too) stored in ``unit`` (None: unchanged)."""
        if unit is None:
            return self
        convert(1.0, unit, self.unit)  # fail early on an unknown unit
        sources = tuple(s if s.key.startswith("calc:") and not every_source
                        else dataclasses.replace(s, unit=unit, convention="any")
                        for s in self.sources)
        return dataclasses.replace(self, sources=sources)
