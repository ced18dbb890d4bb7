"""Delta learning on a cheap level (molpre.data.multifidelity): reading, matching, the scale."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.data.multifidelity import align, center, delta_data, fit_scale, read_cheap_energies


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


def test_fit_scale_recovers_the_scale_from_training_rows():
    frames = _molecules(60)
    rng = np.random.default_rng(1)
    cheap = rng.normal(size=60) * 3
    counts = np.array([[np.sum(a.numbers == z) for z in (1, 6, 7, 8)] for a in frames])
    energy = counts @ np.array([-0.5, -4.0, -3.0, -2.0]) + 0.67 * cheap + rng.normal(size=60) * 1e-3
    assert fit_scale([a.numbers for a in frames], energy, cheap) == pytest.approx(0.67, abs=1e-3)


def test_centering_forgets_per_element_constants_only():
    frames = _molecules(40)
    numbers = [a.numbers for a in frames]
    cheap = np.random.default_rng(2).normal(size=40)
    shift = np.array([sum({1: -13.6, 6: -1030.0, 7: -1480.0, 8: -2040.0}[int(z)] for z in zs)
                      for zs in numbers])
    np.testing.assert_allclose(center(numbers, cheap + shift), center(numbers, cheap), atol=1e-8)
    assert np.abs(center(numbers, cheap)).max() > 0.1  # the molecule-specific part is kept


def test_delta_data_replaces_energy_and_scoring_on_the_target_is_unchanged(tmp_path):
    frames = _molecules(10)
    labeled = labeled_from_atoms(_with_energy(frames, np.arange(10.0)), "energy")
    cheap = np.linspace(-3, 3, 10)
    delta = delta_data(labeled, cheap, 0.5)
    np.testing.assert_allclose(delta.energy, np.arange(10.0) - 0.5 * cheap)
    np.testing.assert_allclose(labeled.energy, np.arange(10.0))  # the original is untouched
    prediction = delta.energy + 0.5 * cheap  # a perfect delta model plus the cheap level
    np.testing.assert_allclose(prediction, labeled.energy)


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


def test_delta_of_forces_is_refused():
    frames = _with_energy(_molecules(3), [1.0, 2.0, 3.0])
    for atoms in frames:
        atoms.calc.results["forces"] = np.zeros((len(atoms), 3))
    labeled = labeled_from_atoms(frames, "energy", forces=True)
    with pytest.raises(DatasetError, match="forces"):
        delta_data(labeled, np.zeros(3), 1.0)
