"""The registry of targets: what a finetune, an evaluation or a study can learn and score.

A name is a registered target (``energy``, ``homo``, ``lumo``, ``gap``, ``dipole``,
``alpha``; ``forces`` is the energy's gradient, fitted with ``--forces``) or a data key in
:data:`KEYS` (QM9's ``u0_atom``, ``mu``, ...), which picks the target and the stored unit.
Adding a target of an existing kind is one entry in :data:`TARGETS` (or :func:`register`);
adding a kind is one module in molpre.targets.kinds.
"""

from __future__ import annotations

import dataclasses

from molpre.targets.spec import Source, TargetError, TargetSpec
from molpre.units import EV_TO_KCAL_PER_MOL

TARGETS: dict[str, TargetSpec] = {}


def register(spec: TargetSpec) -> TargetSpec:
    """Add (or replace) a target in the registry; returns it."""
    TARGETS[spec.name] = spec
    return spec


def _energy_like(name: str, kind: str, description: str) -> TargetSpec:
    """An orbital energy stored as eV by molpre and as Hartree by QM9."""
    return TargetSpec(name, kind, "eV", (Source(name, "eV", "molpre"), Source(name, "hartree", "qm9")),
                      "meV", 1000.0, description=description)


register(TargetSpec(
    "energy", "extensive", "eV", (Source("calc:energy", "eV"), Source("energy", "eV")), "meV", 1000.0,
    forces=True, description="total energy; forces as -dE/dpos",
    extra_units=(("kcal/mol", EV_TO_KCAL_PER_MOL),), headline_unit="kcal/mol",
    metric_format="{prefix}{stat}_{unit}"))
register(TargetSpec(
    "forces", "forces", "eV/Angstrom",
    (Source("calc:forces", "eV/Angstrom"), Source("arrays:forces", "eV/Angstrom")),
    "meV/Angstrom", 1000.0, description="forces, -dE/dpos of the energy (eV/Angstrom)",
    metric_format="{prefix}forces_{stat}_{unit}"))
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
    (molpre.targets.keys). Unknown names raise TargetError listing the known ones.
    """
    if "=" in name:
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
    single target only); two names for the same target, or a target without a head of
    its own (``forces``), are an error."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise TargetError("no target given")
    if unit is not None and len(names) > 1:
        raise TargetError("unit applies to a single target; use registered data keys for several")
    specs = [get_target(n, unit) for n in names]
    headless = [s.name for s in specs if not s.kind.has_head]
    if headless:
        raise TargetError(f"{headless[0]} is learned as the gradient of the energy: give the "
                          "energy target and fit forces with --forces")
    seen = [s.name for s in specs]
    if len(set(seen)) != len(seen):
        raise TargetError(f"targets {names} name the same property twice")
    return specs


def monitor_name(specs: list[TargetSpec]) -> str:
    """The validation metric that selects epochs: the one target's MAE (``val_mae_mev`` for
    the energy), or ``val_score`` (sum over targets of val MAE / loss scale) for several."""
    return specs[0].metric_name("mae", "val_") if len(specs) == 1 else "val_score"


def mapped_target(text: str, unit: str | None = None):
    """The TargetSpec of a mapped target: the registered target's kind, head and molpre unit,
    read from one source, the mapping's key in its unit (else ``unit``, else the molpre unit).
    """
    from molpre.targets.keys import parse_mapped
    from molpre.targets.spec import convert

    mapping = parse_mapped(text)
    if mapping.name not in TARGETS:
        raise TargetError(f"target {text!r}: {mapping.name!r} is not a registered target; "
                          f"name one of {', '.join(sorted(TARGETS))}")
    base = TARGETS[mapping.name]
    stored = mapping.unit or unit or base.unit
    convert(1.0, stored, base.unit)  # an unknown unit fails here, naming the choices
    return dataclasses.replace(base, sources=(Source(mapping.key, stored),))
