"""Model folders saved before the flavour moved name the old module in their code file
(``molpre.models.pyfunc``, then ``molpre.pyfunc``; now ``molpre.inference.pyfunc``). MLflow
runs that file when it loads the folder, so every old name still loads; so do the other
modules that moved into molpre.inference, as the very same module objects."""

import importlib
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
import torch

import molpre
from molpre.inference import Predictor
from molpre.inference.pyfunc import MolprePyfunc, save_pyfunc_model
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

OLD_PYFUNC_NAMES = ("molpre.models.pyfunc", "molpre.pyfunc")


@pytest.mark.parametrize("old", sorted(molpre.MOVED))
def test_every_old_module_name_is_the_new_module(old):
    assert importlib.import_module(old) is importlib.import_module(molpre.MOVED[old])
    assert importlib.import_module(old).__spec__.name == molpre.MOVED[old]


def test_old_names_give_the_same_classes():
    from molpre.calculator import MolpreCalculator
    from molpre.models.pyfunc import MolprePyfunc as oldest
    from molpre.predict import Predictor as old_predictor
    from molpre.pyfunc import MolprePyfunc as older

    from molpre.inference import MolpreCalculator as calculator

    assert oldest is older is MolprePyfunc and old_predictor is Predictor is molpre.Predictor
    assert MolpreCalculator is calculator


def test_a_fresh_interpreter_imports_the_old_names():
    code = ("from molpre.models.pyfunc import MolprePyfunc as a; "
            "from molpre.pyfunc import MolprePyfunc as b; print(a is b, a.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True molpre.inference.pyfunc"


@pytest.mark.parametrize("old", OLD_PYFUNC_NAMES)
def test_a_folder_whose_code_file_names_an_old_module_loads(tmp_path, old):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), {1: -13.6, 8: -2041.0}, energy_scale=0.1).eval()
    folder = save_pyfunc_model(save_checkpoint(model, tmp_path / "m.ckpt",
                                               meta={"cutoff": 4.5}), tmp_path / "model")
    code = folder / "_pyfunc_code.py"
    assert "from molpre.inference.pyfunc import MolprePyfunc" in code.read_text()
    code.write_text(code.read_text().replace("molpre.inference.pyfunc", old))
    frame = pd.DataFrame({"smiles": ["O", "OO"]})
    out = mlflow.pyfunc.load_model(str(folder)).predict(frame, params={"n_conformers": 1})
    expected = Predictor.from_checkpoint(tmp_path / "m.ckpt", progress=False).predict_frame(
        frame, n_conformers=1)
    assert out["status"].tolist() == ["ok", "ok"]
    assert out["energy_ev"].tolist() == pytest.approx(expected["energy_ev"].tolist(), abs=1e-6)
