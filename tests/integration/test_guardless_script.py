"""A chemist's script without ``if __name__ == "__main__":`` runs once with workers=2.

Python's forkserver re-imports the main module in its server and in every worker; such a
script then ran again in each of them, started pools of its own and every row came back an
error. molpre's pools prepare no main module (molpre.executor.processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import molpre
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

CODE = Path(molpre.__file__).resolve().parents[1]  # the molpre these tests import

SCRIPT = """\
import os
with open("runs.txt", "a") as f:
    f.write(f"{os.getpid()}\\n")
from molpre import Predictor
pred = Predictor.from_checkpoint("m.ckpt", workers=2, progress=False, n_conformers=1)
frame = pred.predict(["CCO", "CO", "C", "CC"])
print("STATUS", ",".join(frame["status"]))
"""


def run_script(folder: Path, text: str) -> subprocess.CompletedProcess:
    (folder / "script.py").write_text(text)
    env = dict(os.environ, PYTHONPATH=str(CODE), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "script.py"], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=300)


def test_a_script_without_a_main_guard_runs_once_with_two_workers(tmp_path):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), {1: -13.6, 6: -1029.0, 8: -2041.0},
                        energy_scale=0.1).eval()
    save_checkpoint(model, tmp_path / "m.ckpt", meta={"cutoff": 4.5})
    done = run_script(tmp_path, SCRIPT)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = (tmp_path / "runs.txt").read_text().split()
    assert len(runs) == 1, f"the script ran {len(runs)} times: {done.stderr[-2000:]}"
    assert "STATUS ok,ok,ok,ok" in done.stdout
    assert "bootstrapping phase" not in done.stderr
