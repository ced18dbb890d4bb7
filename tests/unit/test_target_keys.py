"""Mapping a file's own keys and units onto molpre's targets (molpre.targets.keys), in every
config that reads labels: finetune, study, evaluate."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from molpre.config import ConfigError, load_config
from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.study.config import load_study_config
from molpre.study.plan import Child, finetune_config
from molpre.targets import TargetError, get_target, parse_targets
from molpre.targets.keys import TargetKey, parse_mapped
from molpre.train.finetune_config import FinetuneConfig
from molpre.units import ENERGY_UNITS_TO_EV


def frames(n: int = 4) -> list:
    """Frames as a foreign file stores them: energy in info['energy_kcal'] (kcal/mol) and
    forces in arrays['forces_kcal_a'] (kcal/mol/Angstrom)."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        atoms = molecule("H2O")
        atoms.info.update(mol_id=f"w{k}", energy_kcal=-47000.0 - k)
        atoms.arrays["forces_kcal_a"] = rng.normal(0.0, 1.0, (3, 3))
        out.append(atoms)
    return out


def test_a_mapped_key_reads_the_value_in_its_unit():
    spec = get_target("energy=energy_kcal[kcal/mol]")
    assert spec.name == "energy" and spec.kind == "extensive" and spec.unit == "eV"
    data = labeled_from_atoms(frames(), "energy=energy_kcal[kcal/mol]", forces=True,
                              forces_key="forces_kcal_a")
    kcal = ENERGY_UNITS_TO_EV["kcal/mol"]
    np.testing.assert_allclose(data.energy, [(-47000.0 - k) * kcal for k in range(4)])
    np.testing.assert_allclose(data.forces[0], frames()[0].arrays["forces_kcal_a"] * kcal)


def test_mapping_errors_name_what_to_write():
    with pytest.raises(TargetError, match="key of your file in the config"):
        get_target("energy_ev")
    with pytest.raises(TargetError, match="not a registered target"):
        get_target("energyy=energy_ev")
    with pytest.raises(TargetError, match="unknown energy unit 'furlong'"):
        get_target("energy=energy_ev[furlong]")
    with pytest.raises(TargetError, match="NAME=KEY"):
        parse_mapped("energy=")
    with pytest.raises(DatasetError, match="no forces \\('forces_ev_a'\\)"):
        labeled_from_atoms(frames(), "energy=energy_kcal[kcal/mol]", forces=True,
                           forces_key="forces_ev_a")


def test_configs_take_the_mapping_as_yaml_and_carry_it_as_text(tmp_path):
    raw = {"target": {"name": "energy", "key": "energy_ev", "unit": "eV"},
           "forces_key": "forces_ev_a", "out": str(tmp_path / "ft")}
    config = load_config(FinetuneConfig, raw)
    assert config.target == "energy=energy_ev[eV]" and config.forces_key == "forces_ev_a"
    assert config.resolved()["target"] == "energy=energy_ev[eV]"
    assert parse_targets(config.target)[0].sources[0].key == "energy_ev"
    with pytest.raises(ConfigError, match="target.kee"):
        load_config(FinetuneConfig, {"target": {"name": "energy", "kee": "x"}})
    study = load_study_config(raw={"data": "x.extxyz", "target": raw["target"],
                                   "forces_key": "forces_ev_a"})
    assert study.target == "energy=energy_ev[eV]"
    child = finetune_config(study, Child("scratch", 20, 0, "scratch"), tmp_path / "ids.txt",
                            None, tmp_path, "e")
    assert (child.target, child.forces_key) == ("energy=energy_ev[eV]", "forces_ev_a")
    assert TargetKey("gap", "gap_h", "hartree").text() == "gap=gap_h[hartree]"
