"""Tiny molecules for the qc tests (ASE's built-in geometries, info as intake writes it)."""

from __future__ import annotations

import pytest
from ase.build import molecule


def make(name: str, **info):
    """ASE molecule ``name`` with intake-style info (mol_id, conf_id, charge, spin)."""
    atoms = molecule(name)
    atoms.info.clear()
    atoms.info.update({"mol_id": name, "conf_id": 0, "charge": 0, "spin": 1, **info})
    return atoms


@pytest.fixture()
def water():
    return make("H2O")


@pytest.fixture()
def mol():
    """Factory fixture: ``mol("CH4", spin=1)`` -> intake-style ase.Atoms."""
    return make

