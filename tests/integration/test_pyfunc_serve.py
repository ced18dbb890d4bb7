"""The pyfunc serves: its artifact carries an installable molpre wheel that requirements.txt
points at, and `mlflow models serve --env-manager local` answers a scoring request."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest
import torch

from molpre.inference.pyfunc import save_pyfunc_model
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


@pytest.fixture(scope="module")
def pyfunc_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), ATOMREF, energy_scale=0.1)
    root = tmp_path_factory.mktemp("serve")
    ckpt = save_checkpoint(model, root / "model.ckpt", meta={"cutoff": 4.5})
    return save_pyfunc_model(ckpt, root / "model")


def test_the_artifact_ships_an_installable_molpre_wheel(pyfunc_dir, tmp_path):
    import molpre

    requirements = (pyfunc_dir / "requirements.txt").read_text().split()
    wheel = pyfunc_dir / next(r for r in requirements if r.endswith(".whl"))
    assert wheel.is_file() and "molpre==" not in " ".join(requirements)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "molpre/inference/predictor.py" in names and not any("__pycache__" in n for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import molpre; "
             "from molpre.inference.pyfunc import MolprePyfunc; print(molpre.__file__, molpre.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True,
                         text=True, check=True, env=env).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == molpre.__version__


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no answer from {url} within {timeout} s")


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_scoring_request(pyfunc_dir, tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(pyfunc_dir),
               "-h", "127.0.0.1", "-p", str(port), "-w", "1", "--env-manager", "local"]
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                              start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", server)
        body = {"dataframe_split": {"columns": ["SMILES", "tag"],
                                    "data": [["CCO", "a"], ["C1CC", "b"]]},
                "params": {"n_conformers": 1}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            rows = json.loads(response.read(), parse_constant=_not_json)["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert [r["tag"] for r in rows] == ["a", "b"]
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert isinstance(rows[0]["energy_ev"], float)
    assert rows[1]["energy_ev"] is None  # null: a strict JSON parser reads the answer


def _not_json(name: str):
    raise ValueError(f"the server answered {name}, which is not JSON")
