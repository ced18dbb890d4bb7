"""Cheap-level labels read from files (molpre.data.multifidelity): reading, merging, matching."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.data.multifidelity import align, read_cheap_energies


def _molecules(n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        numbers = rng.choice([1, 6, 7, 8], size=int(rng.integers(3, 9)))
        atoms = Atoms(numbers, rng.normal(size=(len(numbers), 3)) * 2)
        atoms.info["mol_id"] = f"m{i}"
        out.append(atoms)
    return out


def _with_energy(frames, energies, level="hf/sto-3g/df"):
    out = []
    for atoms, e in zip(frames, energies, strict=True):
        atoms = atoms.copy()
        atoms.info["level"] = level
        atoms.calc = SinglePointCalculator(atoms, energy=float(e))
        out.append(atoms)
    return out


def test_cheap_energies_are_read_merged_and_matched_by_mol_id(tmp_path):
    import ase.io

    frames = _molecules(6)
    ase.io.write(tmp_path / "a.extxyz", _with_energy(frames[:4], [1, 2, 3, 4]), format="extxyz")
    ase.io.write(tmp_path / "b.extxyz", _with_energy(frames[4:], [5, 6]), format="extxyz")
    cheap = read_cheap_energies([tmp_path / "a.extxyz", tmp_path / "b.extxyz"])
    assert len(cheap) == 6 and cheap.level == "hf/sto-3g/df"
    labeled = labeled_from_atoms(_with_energy(frames[::-1], np.zeros(6)), "energy")
    np.testing.assert_allclose(align(labeled, cheap), [6, 5, 4, 3, 2, 1])
    partial = read_cheap_energies(tmp_path / "a.extxyz")
    with pytest.raises(DatasetError, match="2 of 6 molecules .* have no cheap-level energy"):
        align(labeled, partial)


def test_conflicting_or_mixed_cheap_energies_are_refused(tmp_path):
    import ase.io

    frames = _molecules(3)
    twice = _with_energy([frames[0], frames[0]], [1.0, 2.0])
    ase.io.write(tmp_path / "twice.extxyz", twice, format="extxyz")
    with pytest.raises(DatasetError, match="m0 has two cheap energies"):
        read_cheap_energies(tmp_path / "twice.extxyz")
    ase.io.write(tmp_path / "hf.extxyz", _with_energy(frames[:1], [1.0]), format="extxyz")
    ase.io.write(tmp_path / "dft.extxyz", _with_energy(frames[1:2], [1.0], "b3lyp/sto-3g"),
                 format="extxyz")
    with pytest.raises(DatasetError, match="several levels"):
        read_cheap_energies([tmp_path / "hf.extxyz", tmp_path / "dft.extxyz"])


def test_forces_are_read_where_stored(tmp_path):
    import ase.io

    frames = _with_energy(_molecules(2), [1.0, 2.0], "gfn2-xtb")
    frames[0].calc.results["forces"] = np.ones((len(frames[0]), 3))
    ase.io.write(tmp_path / "x.extxyz", frames, format="extxyz")
    cheap = read_cheap_energies(tmp_path / "x.extxyz")
    assert set(cheap.forces) == {"m0"} and cheap.forces["m0"].shape == (len(frames[0]), 3)
