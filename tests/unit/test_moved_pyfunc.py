"""A pyfunc folder saved before the flavour moved to molpre.pyfunc names the old module in
its code file; MLflow runs that file when it loads the folder, so the old name still loads."""

import subprocess
import sys

import mlflow
import pandas as pd
import pytest
import torch

from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder
from molpre.predict import Predictor
from molpre.pyfunc import save_pyfunc_model


def test_the_old_module_name_is_the_new_module():
    from molpre.models.pyfunc import MolprePyfunc
    from molpre.models.pyfunc import save_pyfunc_model as old_save

    from molpre.pyfunc import MolprePyfunc as moved

    assert MolprePyfunc is moved and old_save is save_pyfunc_model


def test_a_fresh_interpreter_imports_the_old_name():
    code = "from molpre.models.pyfunc import MolprePyfunc; print(MolprePyfunc.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "molpre.pyfunc"


def test_a_folder_whose_code_file_names_the_old_module_loads(tmp_path):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), {1: -13.6, 8: -2041.0}, energy_scale=0.1).eval()
    folder = save_pyfunc_model(save_checkpoint(model, tmp_path / "m.ckpt",
                                               meta={"cutoff": 4.5}), tmp_path / "model")
    code = folder / "_pyfunc_code.py"
    assert "from molpre.pyfunc import MolprePyfunc" in code.read_text()
    code.write_text(code.read_text().replace("molpre.pyfunc", "molpre.models.pyfunc"))
    frame = pd.DataFrame({"smiles": ["O", "OO"]})
    out = mlflow.pyfunc.load_model(str(folder)).predict(frame, params={"n_conformers": 1})
    expected = Predictor.from_checkpoint(tmp_path / "m.ckpt", progress=False).predict_frame(
        frame, n_conformers=1)
    assert out["status"].tolist() == ["ok", "ok"]
    assert out["energy_ev"].tolist() == pytest.approx(expected["energy_ev"].tolist(), abs=1e-6)
