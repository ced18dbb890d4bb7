"""Predictor.load never runs code from a model folder: it reads molpre's weights-only checkpoint."""

import pickle
import shutil
from pathlib import Path

import mlflow
import pytest
import torch
from ase.build import molecule

from molpre.inference.predictor import ModelLoadError, Predictor
from molpre.inference.pyfunc import save_pyfunc_model
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


class _WritesMarker:
    """Unpickling this writes the marker file (what a hostile python_model.pkl would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (self.marker.write_text, ("unpickled",))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return EnergyModel(build_encoder("small"), ATOMREF, energy_scale=0.1).eval()


def tampered_model_dir(model, root: Path, marker: Path) -> Path:
    """A real pyfunc folder whose code file and a python_model.pkl write ``marker`` when run."""
    ckpt = save_checkpoint(model, root / "model.ckpt", meta={"cutoff": 4.5})
    folder = save_pyfunc_model(ckpt, root / "model")
    code = folder / "_pyfunc_code.py"
    code.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
                    + code.read_text())
    (folder / "python_model.pkl").write_bytes(pickle.dumps(_WritesMarker(marker), protocol=2))
    (root / "model.ckpt").unlink()  # only the copy inside the pyfunc folder is left
    return folder


def test_a_tampered_folder_loads_without_running_its_code(model, tmp_path, mlflow_uri,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's artifact root (./mlruns) stays in the temp dir
    marker = tmp_path / "marker.txt"
    folder = tampered_model_dir(model, tmp_path / "ft", marker)
    water = molecule("H2O")
    expected = Predictor(model, 4.5, progress=False).predict([water])["energy_ev"][0]
    sources = [folder, tmp_path / "ft"]
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    uri = f"runs:/{run.info.run_id}/model"
    client.create_registered_model("tampered")
    version = client.create_model_version("tampered", uri, run_id=run.info.run_id)
    client.set_registered_model_alias("tampered", "champion", version.version)
    sources += [uri, "models:/tampered/1", "models:/tampered@champion"]
    for source in sources:
        loaded = Predictor.load(source, progress=False)
        assert loaded.predict([water])["energy_ev"][0] == pytest.approx(expected, abs=1e-6)
        assert not marker.exists(), f"loading {source} ran code from the model folder"
    mlflow.pyfunc.load_model(str(folder))  # the pyfunc route does run it: the threat is real
    assert marker.read_text() == "ran"


def test_a_folder_without_a_molpre_checkpoint_is_one_clear_error(model, tmp_path):
    folder = tampered_model_dir(model, tmp_path / "ft", tmp_path / "marker.txt")
    shutil.rmtree(folder / "artifacts")
    with pytest.raises(ModelLoadError, match="holds no molpre model checkpoint"):
        Predictor.load(folder)
    (folder / "MLmodel").write_text("flavors: {python_function: {artifacts: {checkpoint: "
                                    "{path: ../../../etc/passwd}}}}\n")
    with pytest.raises(ModelLoadError, match="holds no molpre model checkpoint"):
        Predictor.load(folder)
    assert not (tmp_path / "marker.txt").exists()


def test_a_pickled_checkpoint_is_refused_not_unpickled(tmp_path):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "model.ckpt"
    evil.write_bytes(pickle.dumps({"format": "molpre.finetune/1", "x": _WritesMarker(marker)},
                                  protocol=2))
    with pytest.raises(ModelLoadError, match="not a readable molpre checkpoint"):
        Predictor.load(evil)
    assert not marker.exists()
