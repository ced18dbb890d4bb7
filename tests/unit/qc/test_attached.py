"""Cheap-level results attached to conformers where they are made (molpre.qc.attached)."""

from __future__ import annotations

from ase.build import molecule

from molpre.qc import compute, parse_level
from molpre.qc.attached import INFO_KEY, attach_results, take_attached


def test_only_conformers_of_the_models_elements_get_a_result():
    level = parse_level("mmff94")
    water, methanethiol = molecule("H2O"), molecule("CH3SH")
    attach_results([water, methanethiol], level, elements=frozenset({1, 6, 7, 8}))
    assert INFO_KEY not in methanethiol.info  # sulfur: the model turns it down, no work
    result = take_attached(water, level)
    assert result.ok and result.energy == compute(water, level).energy


def test_a_result_without_forces_does_not_answer_a_request_for_forces():
    level = parse_level("mmff94")
    atoms = molecule("CH4")
    attach_results([atoms], level)
    assert take_attached(atoms, level, forces=True) is None
    attach_results([atoms], level, forces=True)
    got = take_attached(atoms, level, forces=True)
    assert got.forces.shape == (5, 3)
