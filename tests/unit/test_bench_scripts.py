"""The speed benches run and measure what they say (tiny sizes; no timing is asserted)."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(BENCH.parent))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=BENCH.parent)


def test_molpre_step_prints_params_and_both_rates(shared_data):
    proc = _run([str(BENCH / "molpre_step.py"), "--data", str(shared_data / "qm9_sample3000.extxyz.gz"),
                 "--n", "8", "--batch_size", "4", "--warmup", "0", "--rounds", "1"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["params"] > 50_000 and len(out["train"]) == len(out["inference"]) == 1
    assert min(out["train"] + out["inference"]) > 0


def test_profile_charges_both_backward_passes_to_the_edge_product(shared_data):
    prof = _load("profile_encoder")
    atoms = prof.frames(8)
    args = argparse.Namespace(preset="small", batch_size=4, steps=1, top=3)
    res = prof.profile_workload("train", atoms, args)
    conv = {col: ms for (label, col), ms in res["table"].items() if label == "tensor product: edge conv"}
    assert set(conv) == {"forward", "forces backward", "loss.backward"}
    assert min(conv.values()) > 0
    assert res["phases"]["optimizer"] > 0 and res["plain_ms"] > 0


def test_label_for_names_the_parts_of_a_block():
    prof = _load("profile_encoder")
    assert prof.label_for("encoder.blocks.1.dense_conv") == "tensor product: edge conv"
    assert prof.label_for("encoder.blocks.0.radial") == "radial MLP"
    assert prof.label_for("encoder.radial") == "radial basis"
    assert prof.label_for("encoder.blocks.0") == "block: gather+scatter"
    assert prof.label_for("heads.energy.readout") == "heads + losses"


@pytest.mark.slow
def test_gpu_smoke_runs_on_the_cpu_flag():
    proc = _run([str(BENCH / "gpu_smoke.py"), "--cpu", "--steps", "2", "--batch-size", "8"],
                timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| device | cpu" in proc.stdout and "finetune step, conformers/s" in proc.stdout
