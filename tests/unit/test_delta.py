"""Delta learning as one transform (molpre.delta): fit, remove, add back, meta, sources."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.delta import CheapLabels, Delta, cheap_labels, element_offsets, fit_delta, fit_scale


def _frames(n: int, seed: int = 0, forces: bool = True) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        numbers = rng.choice([1, 6, 7, 8], size=int(rng.integers(3, 9)))
        atoms = Atoms(numbers, rng.normal(size=(len(numbers), 3)) * 2)
        atoms.info["mol_id"] = f"m{i}"
        results = {"energy": float(rng.normal() * 5)}
        if forces:
            results["forces"] = rng.normal(size=(len(numbers), 3))
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


def _cheap(frames, seed=3, forces=True) -> CheapLabels:
    rng = np.random.default_rng(seed)
    energies = np.array([-10.0 * len(a) + rng.normal() for a in frames])
    f = [rng.normal(size=(len(a), 3)) for a in frames] if forces else None
    return CheapLabels("gfn2-xtb", energies, f, "memory")


def test_remove_then_add_reproduces_the_target_to_1e_9():
    frames = _frames(20)
    data = labeled_from_atoms(frames, "energy", forces=True)
    cheap = _cheap(frames)
    delta = fit_delta(data, cheap, np.arange(12), forces=True)
    residual = delta.remove(data, cheap)
    back = [delta.add(e, a.numbers, c) for e, a, c in
            zip(residual.energy, data.atoms, cheap.energies, strict=True)]
    np.testing.assert_allclose(back, data.energy, rtol=0, atol=1e-9)
    for f_res, f_cheap, f in zip(residual.forces, cheap.forces, data.forces, strict=True):
        np.testing.assert_allclose(delta.add_forces(f_res, f_cheap), f, rtol=0, atol=1e-9)
    np.testing.assert_allclose(data.energy, [a.get_potential_energy() for a in frames])  # untouched


def test_the_scale_comes_from_training_rows_and_offsets_from_cheap_energies_only():
    frames = _frames(60, forces=False)
    numbers = [a.numbers for a in frames]
    rng = np.random.default_rng(1)
    cheap = rng.normal(size=60) * 3
    counts = np.array([[np.sum(a.numbers == z) for z in (1, 6, 7, 8)] for a in frames])
    energy = counts @ np.array([-0.5, -4.0, -3.0, -2.0]) + 0.67 * cheap + rng.normal(size=60) * 1e-3
    assert fit_scale(numbers, energy, cheap) == pytest.approx(0.67, abs=1e-3)
    for atoms, e in zip(frames, energy, strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=float(e))
    data = labeled_from_atoms(frames, "energy")
    labels = CheapLabels("hf/sto-3g", cheap)
    train = np.arange(40)
    poisoned = data.subset(range(60))
    poisoned.labels["energy"][40:] += 1e3  # test labels must never enter the fit
    assert fit_delta(poisoned, labels, train).scale == pytest.approx(
        fit_delta(data, labels, train).scale, abs=1e-12)
    offsets = element_offsets(numbers, cheap + counts @ np.array([1.0, 2.0, 3.0, 4.0]))
    assert offsets[1] - element_offsets(numbers, cheap)[1] == pytest.approx(1.0, abs=1e-9)


def test_meta_round_trip_and_the_older_checkpoint_form():
    delta = Delta("gfn2-xtb", 0.9, {1: -1.0, 6: -2.0}, forces=True)
    assert Delta.from_meta(delta.to_meta()) == delta
    old = {"level": {"method": "hf", "basis": "sto-3g", "density_fit": True}, "scale": 1.1,
           "offsets": {"1": -0.5}}
    legacy = Delta.from_meta(old)
    assert legacy.level == "hf/sto-3g/df" and legacy.scale == 1.1 and not legacy.forces
    assert Delta.from_meta(None) is None


def test_forces_need_the_cheap_levels_forces():
    frames = _frames(4)
    data = labeled_from_atoms(frames, "energy", forces=True)
    with pytest.raises(DatasetError, match="needs the cheap level's forces"):
        fit_delta(data, _cheap(frames, forces=False), np.arange(3), forces=True)


def test_a_level_source_is_computed_once_into_its_cache(tmp_path):
    pytest.importorskip("tblite.interface", reason="tblite is a dependency on Linux x86-64")
    from molpre.qc import compute, parse_level

    frames = []
    for i, name in enumerate(["H2O", "NH3", "CH4"]):
        atoms = molecule(name)
        atoms.info.update(mol_id=name, charge=0, spin=1)
        atoms.calc = SinglePointCalculator(atoms, energy=float(i))
        frames.append(atoms)
    data = labeled_from_atoms(frames, "energy")
    cache = tmp_path / "cheap.db"
    cheap = cheap_labels(data, "gfn2-xtb", cache=str(cache), forces=True)
    direct = [compute(a, parse_level("gfn2-xtb"), forces=True) for a in frames]
    np.testing.assert_allclose(cheap.energies, [r.energy for r in direct], atol=1e-9)
    np.testing.assert_allclose(cheap.forces[2], direct[2].forces, atol=1e-9)
    assert cheap.level == "gfn2-xtb"
    stamp = cache.stat().st_mtime_ns
    again = cheap_labels(data, "gfn2-xtb", cache=str(cache), forces=True)
    np.testing.assert_allclose(again.energies, cheap.energies, atol=0)
    assert cache.stat().st_mtime_ns == stamp  # nothing recomputed, nothing written
    from_store = cheap_labels(data, [str(cache)])  # the same store read as files, by mol_id
    np.testing.assert_allclose(from_store.energies, cheap.energies, atol=1e-9)


def test_a_studys_delta_level_is_computed_once_into_the_study_folder(tmp_path):
    pytest.importorskip("tblite.interface", reason="tblite is a dependency on Linux x86-64")
    from molpre.study.config import DeltaSpec, StudyConfig
    from molpre.study.runner import with_cheap_store

    frames = []
    for i, name in enumerate(["H2O", "NH3", "CH4", "C2H6"]):
        atoms = molecule(name)
        atoms.info.update(mol_id=name, charge=0, spin=1)
        atoms.calc = SinglePointCalculator(atoms, energy=float(i))
        frames.append(atoms)
    data = labeled_from_atoms(frames, "energy")
    config = StudyConfig(data="x.extxyz", delta=DeltaSpec(level="gfn2-xtb"))
    resolved = with_cheap_store(config, data, tmp_path)
    assert resolved.delta.level is None
    assert resolved.delta.data == [str(tmp_path / "cheap-gfn2-xtb.db")]
    assert len(cheap_labels(data, resolved.delta.data).energies) == 4
    # labels with forces: the store holds the cheap forces too, so children fit forces
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.calc.results["energy"],
                                           forces=np.zeros((len(atoms), 3)))
    with_forces = with_cheap_store(config, labeled_from_atoms(frames, "energy"), tmp_path)
    assert with_forces.delta.data == [str(tmp_path / "cheap-gfn2-xtb-forces.db")]
    read = cheap_labels(data, with_forces.delta.data)
    assert read.forces is not None and [f.shape for f in read.forces] == [(3, 3), (4, 3), (5, 3),
                                                                          (8, 3)]
    energies_only = tmp_path / "cheap-gfn2-xtb.db"  # an old energy-only cache: its rows are
    before = cheap_labels(data, "gfn2-xtb", cache=str(energies_only))  # recomputed with forces
    upgraded = cheap_labels(data, "gfn2-xtb", cache=str(energies_only), forces=True)
    assert upgraded.forces is not None and len(upgraded.forces) == len(data)
    assert np.allclose(upgraded.energies, before.energies, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="not both"):
        DeltaSpec(level="gfn2-xtb", data=["a.db"])
    with pytest.raises(ValueError, match="cannot read a level"):
        DeltaSpec(level="xtb")
