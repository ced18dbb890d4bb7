"""Targets: what a model can learn, read once from a label file into molpre units.

A :class:`TargetSpec` (molpre.targets.spec) is data: where a property is stored and in
which unit, its kind and its report units. Its kind (molpre.targets.kinds: ``extensive``,
``intensive``, ``vector``, ``forces``) is a class that owns the behaviour: how labels are
stacked, normalised, which head is built, how errors and losses are computed, and which
baseline it is compared with. The registry (molpre.targets.registry) names the targets.

Units inside molpre: energies eV, forces eV/Angstrom, dipoles Debye, polarizabilities
Angstrom^3. Adding a target is one entry in :data:`TARGETS` (or :func:`register`); adding a
kind is one module in molpre/targets/kinds/.
"""

from __future__ import annotations

from molpre.targets.kinds import KINDS, Kind, get_kind, register_kind
from molpre.targets.registry import (
    KEYS,
    TARGETS,
    get_target,
    monitor_name,
    parse_targets,
    register,
)
from molpre.targets.spec import (
    CONVERSIONS,
    QM9_SIGNATURE,
    Source,
    TargetError,
    TargetSpec,
    convention,
    convert,
)
from molpre.units import BOHR3_TO_ANGSTROM3, DEBYE_PER_E_ANGSTROM

__all__ = ["BOHR3_TO_ANGSTROM3", "CONVERSIONS", "DEBYE_PER_E_ANGSTROM", "KEYS", "KINDS",
           "QM9_SIGNATURE", "TARGETS", "Kind", "Source", "TargetError", "TargetSpec",
           "convention", "convert", "get_kind", "get_target", "monitor_name", "parse_targets",
           "register", "register_kind"]
