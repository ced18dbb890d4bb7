"""``molpre finetune --ensemble K``: K members on one split, one committee checkpoint."""

from __future__ import annotations

import ase.io
import mlflow
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner

from molpre.cli import main
from molpre.config import ConfigError
from molpre.inference.predictor import Predictor
from molpre.models.checkpoint import COMMITTEE_FORMAT, read_checkpoint
from molpre.train.finetune_config import FinetuneConfig

NAMES = ["H2O", "NH3", "CH4", "CH3OH", "C2H2", "HCN", "H2CO", "C2H4", "CH3CHO", "C2H6"]


def test_finetune_ensemble_saves_a_calibrated_committee(tmp_path, mlflow_uri):
    frames = []
    for i, name in enumerate(NAMES):
        for k in range(2):
            atoms = molecule(name)
            atoms.rattle(0.02, seed=10 * i + k)
            atoms.calc = EMT()
            atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
            atoms.info["mol_id"] = f"{name}-{k}"
            frames.append(atoms)
    labels = tmp_path / "emt.extxyz"
    ase.io.write(labels, frames, format="extxyz")
    out = tmp_path / "ft"
    result = CliRunner().invoke(main, [
        "finetune", "--data", str(labels), "--ensemble", "2", "--epochs", "2", "--batch-size", "8",
        "--val-fraction", "0.2", "--seed", "3", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "committee of 2 (seeds 3..4)" in result.output
    payload = read_checkpoint(out / "model.ckpt")
    assert payload["format"] == COMMITTEE_FORMAT and len(payload["members"]) == 2
    assert payload["config"]["ensemble"] == 2 and payload["meta"]["committee"] == 2
    domain = payload["meta"]["domain"]
    assert 0 < domain["max_atoms"] <= max(len(a) for a in frames)
    assert domain["thresholds"]["energy_ev"] > 0 and domain["per_atom"]["energy_ev"]
    states = [m["state_dict"] for m in payload["members"]]
    key = next(k for k in states[0] if k.startswith("encoder.") and states[0][k].numel() > 1)
    assert not (states[0][key] == states[1][key]).all()  # seeds 3 and 4: different members
    run = mlflow.MlflowClient(mlflow_uri).get_run(payload["meta"]["run_id"])
    assert "member_1.val_mae_mev" in run.data.metrics and "test_ood_fraction" in run.data.metrics
    df = Predictor.load(out / "model", progress=False).predict(["CCO"])
    assert df.loc[0, "status"] == "ok" and df.loc[0, "energy_ev_std"] > 0


def test_ensemble_must_be_positive():
    assert FinetuneConfig().ensemble == 1
    with pytest.raises(ConfigError, match="ensemble"):
        FinetuneConfig(ensemble=0)
