"""Options once: every compute command takes --config/--set and gets its options from config
fields, whose defaults and checks are declared once (the Predictor reads the same fields)."""

import dataclasses

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from molpre.cli import main
from molpre.inference import Predictor
from molpre.inference.config import PredictConfig
from molpre.inference.options import OPTIONS, PredictorOptions
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

COMPUTE = ("conformers", "label", "pretrain", "finetune", "predict", "embed", "evaluate",
           "study", "demo")


@pytest.mark.parametrize("command", COMPUTE)
def test_every_compute_command_takes_config_and_set(command):
    text = CliRunner().invoke(main, [command, "--help"]).output
    assert "--config" in text and "--set KEY=VALUE" in text, text


def test_the_predictor_reads_its_options_from_one_declaration(predictor):
    defaults = PredictorOptions()
    assert OPTIONS == tuple(f.name for f in dataclasses.fields(PredictorOptions))
    fresh = Predictor(predictor.model, predictor.cutoff)
    assert fresh.options == defaults and fresh.workers == defaults.workers == 1
    assert PredictConfig().predictor_options() == dataclasses.asdict(defaults)
    assert fresh.configure(workers=2, aggregation="boltzmann").workers == 2
    with pytest.raises(ValueError, match="aggregation must be one of"):
        fresh.configure(aggregation="mean")
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        Predictor(predictor.model, predictor.cutoff, chunk=0)
    with pytest.raises(TypeError, match="unknown predictor option 'conformers'"):
        fresh.configure(conformers=2)
    with pytest.raises(AttributeError):
        fresh.workers = 3  # one source: change it with configure


def test_predict_takes_a_yaml_config_and_set(tmp_path):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), {1: -13.6, 6: -1029.0, 8: -2041.0},
                        energy_scale=0.1).eval()
    save_checkpoint(model, tmp_path / "m.ckpt", meta={"cutoff": 4.5})
    (tmp_path / "in.csv").write_text("name,structure\nethanol,CCO\nwater,O\n")
    (tmp_path / "p.yaml").write_text(
        f"predict:\n  model: {tmp_path / 'm.ckpt'}\n  smiles_col: structure\n"
        f"  n_conformers: 1\n  output: {tmp_path / 'out.csv'}\n")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "in.csv"), "--config",
                                       str(tmp_path / "p.yaml"), "--set", "id_col=name",
                                       "--set", "aggregation=boltzmann"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out.csv")
    assert frame["id"].tolist() == ["ethanol", "water"] and set(frame["status"]) == {"ok"}
    assert frame["n_conformers"].tolist() == [1, 1]
    bad = CliRunner().invoke(main, ["predict", str(tmp_path / "in.csv"), "--config",
                                    str(tmp_path / "p.yaml"), "--set", "aggregation=mean"])
    assert bad.exit_code == 2 and "aggregation must be one of" in bad.output
    missing = CliRunner().invoke(main, ["predict", str(tmp_path / "in.csv"),
                                        "-o", str(tmp_path / "x.csv")])
    assert missing.exit_code == 2 and "Missing option '--model'" in missing.output
