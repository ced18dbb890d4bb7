"""Forces by default: finetuning fits forces when every row has them, reports force MAE."""

import pytest
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.train.finetune import finetune, resolve_forces
from molpre.train.finetune_config import DEFAULT_FORCES_WEIGHT, ConfigError, FinetuneConfig

NAMES = ["H2O", "CH4", "NH3", "C2H6", "CH3OH", "C2H4", "HCN", "H2CO", "CO2", "C2H2"]


def _frames(with_forces: bool = True):
    frames = []
    for k, name in enumerate(NAMES):
        atoms = molecule(name)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        keep = with_forces or k % 2
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces if keep else None)
        atoms.info["mol_id"] = name
        frames.append(atoms)
    return frames


def test_config_forces_auto_and_weights():
    auto = FinetuneConfig()
    assert auto.forces is None and auto.force_weight == DEFAULT_FORCES_WEIGHT
    assert FinetuneConfig(forces_weight=0).forces is False
    assert FinetuneConfig(forces_weight=3.0).forces is True
    assert FinetuneConfig(forces=True).force_weight == DEFAULT_FORCES_WEIGHT
    with pytest.raises(ConfigError, match="forces_weight"):
        FinetuneConfig(forces=True, forces_weight=0)
    assert FinetuneConfig.from_dict({"forces": "false"}).forces is False


def test_resolve_forces_auto_on_only_when_every_row_has_forces():
    full = labeled_from_atoms(_frames(True))
    partial = labeled_from_atoms(_frames(False))
    assert full.forces is None  # loaded without asking
    assert resolve_forces(FinetuneConfig(), full).forces is not None
    assert resolve_forces(FinetuneConfig(), partial).forces is None
    assert resolve_forces(FinetuneConfig(forces=False), full).forces is None
    with pytest.raises(DatasetError, match="no forces"):
        resolve_forces(FinetuneConfig(forces=True), partial)


def test_finetune_fits_forces_by_default_and_reports_force_mae(tmp_path, store):
    config = FinetuneConfig(data="emt", epochs=1, batch_size=4, test_fraction=0.2,
                            out=str(tmp_path), progress=False, log_model=False)
    result = finetune(config, data=labeled_from_atoms(_frames(True)))
    assert result.metrics["test_forces_mae_mev_per_a"] > 0
    assert result.metrics["best_val_forces_mae_mev_per_a"] > 0
    assert result.history[-1]["val_forces_mae_mev_per_a"] > 0
    off = finetune(config.replace(forces=False, out=str(tmp_path / "off")),
                   data=labeled_from_atoms(_frames(True)))
    assert "test_forces_mae_mev_per_a" not in off.metrics
    assert "val_forces_mae_mev_per_a" not in off.history[-1]


def test_with_forces_the_best_epoch_is_chosen_on_energy_and_forces_together(tmp_path, store):
    """val_score = (E MAE + w x F MAE) / the energy's scale: its ratio to the logged MAEs (meV)
    is the same every epoch, and a fit without forces selects on the energy MAE alone."""
    config = FinetuneConfig(data="emt", epochs=3, batch_size=4, test_fraction=0.2,
                            out=str(tmp_path), progress=False, log_model=False)
    result = finetune(config, data=labeled_from_atoms(_frames(True)))
    weight = config.force_weight
    ratios = [h["val_score"] / (h["val_mae_mev"] + weight * h["val_forces_mae_mev_per_a"])
              for h in result.history]
    assert len(ratios) == 3 and ratios[0] > 0
    assert ratios == pytest.approx([ratios[0]] * 3, rel=1e-9)
    off = finetune(config.replace(forces=False, epochs=1, out=str(tmp_path / "off")),
                   data=labeled_from_atoms(_frames(True)))
    assert "val_score" not in off.history[-1]
