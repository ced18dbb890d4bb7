"""Targets read from any key of a label file, in any unit: the mapping a config gives.

A labeled file nobody here wrote stores its labels under its own names: the energy as
``info['energy_ev']``, forces as ``arrays['forces_ev_a']``. A config maps them without
registering anything in Python::

    target: {name: energy, key: energy_ev, unit: eV}   # finetune, evaluate and study configs
    forces_key: forces_ev_a                             # forces, in the energy's unit per Angstrom

``name`` is a registered target (molpre.targets: energy, homo, lumo, gap, dipole, alpha),
``key`` the ``atoms.info`` key (``calc:NAME`` for a calculator result) and ``unit`` the
stored unit (default: the target's molpre unit). Inside molpre the mapping travels as the
text ``NAME=KEY[UNIT]`` (``energy=energy_ev[eV]``), which :func:`molpre.targets.get_target`
reads, so every config, child job, checkpoint and ``--target`` option carries it as a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from molpre.errors import TargetError

#: ``NAME=KEY`` or ``NAME=KEY[UNIT]``.
MAPPED = re.compile(r"^\s*(?P<name>[^=\[\],\s]+)\s*=\s*(?P<key>[^=\[\],\s]+)\s*"
                    r"(?:\[(?P<unit>[^\]]+)\])?\s*$")


@dataclass(frozen=True)
class TargetKey:
    """A registered target ``name`` read from data key ``key`` stored in ``unit``."""

    name: str = "energy"
    key: str = ""
    unit: str | None = None

    def __post_init__(self) -> None:
        for field in ("name", "key"):
            value = getattr(self, field)
            if not value or re.search(r"[=\[\],\s]", value):
                raise ValueError(f"{field}: give a key without spaces, commas, '=' or brackets "
                                 f"(got {value!r})")
        if self.unit is not None and "]" in self.unit:
            raise ValueError(f"unit: {self.unit!r} is not a unit")

    def text(self) -> str:
        """``energy=energy_ev[eV]``: the form every config and checkpoint stores."""
        return f"{self.name}={self.key}" + (f"[{self.unit}]" if self.unit else "")


def is_mapped(text: str) -> bool:
    """Whether a target text is a mapping (``NAME=KEY[UNIT]``)."""
    return "=" in str(text)


def parse_mapped(text: str) -> TargetKey:
    """``"energy=energy_ev[eV]"`` -> ``TargetKey("energy", "energy_ev", "eV")``."""
    match = MAPPED.match(str(text))
    if not match:
        raise TargetError(f"target {text!r}: write a mapped target as NAME=KEY or "
                          "NAME=KEY[UNIT], e.g. energy=energy_ev[eV]")
    return TargetKey(match["name"], match["key"], match["unit"])


def target_text(value: str | TargetKey) -> str:
    """A config's ``target`` value as text: a string stays, a TargetKey becomes
    ``NAME=KEY[UNIT]``."""
    return value.text() if isinstance(value, TargetKey) else value
