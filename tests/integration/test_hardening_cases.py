"""The cases of "what breaks today" that the hostile-input matrix does not generate: a data set
with its own key names, checks made before any work, a corpus of random bytes, an encoder
that is not a checkpoint. In-process, real components, tiny data."""

from __future__ import annotations

import ase.io
import mlflow
import numpy as np
import pytest
from ase.collections import g2
from click.testing import CliRunner

from molpre.cli import main

ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    return lines[0]


def foreign_file(path, energy_key: str, forces_key: str, unit_factor: float = 1.0):
    """Small molecules (ASE's g2 set, H/C/N/O) labeled the way another group's file is: the
    energy in ``info[energy_key]``, forces in ``arrays[forces_key]``, nothing named energy."""
    rng = np.random.default_rng(0)
    frames = []
    for k, name in enumerate(n for n in g2.names
                             if set(g2[n].get_chemical_symbols()) <= set("HCNO") and len(g2[n]) > 1):
        atoms = g2[name].copy()
        energy = sum(ATOMREF[int(z)] for z in atoms.numbers) + rng.normal(0.0, 0.3)
        atoms.info = {"mol_id": f"g2-{k}", energy_key: energy / unit_factor}
        atoms.arrays[forces_key] = rng.normal(0.0, 0.05, (len(atoms), 3)) / unit_factor
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


@pytest.fixture(scope="module")
def mapped_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mapped")
    data = foreign_file(tmp / "theirs.extxyz", "energy_ev", "forces_ev_a")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        result = invoke("finetune", "--data", data, "--set",
                        "target={name: energy, key: energy_ev, unit: eV}", "--set",
                        "forces_key=forces_ev_a", "--epochs", "1", "--budget", "40",
                        "-o", tmp / "ft")
        yield tmp, data, result


def test_finetune_maps_a_files_own_energy_and_forces_keys(mapped_model):
    from molpre.models.checkpoint import read_checkpoint

    tmp, _, result = mapped_model
    assert result.exit_code == 0, result.output
    meta = read_checkpoint(tmp / "ft" / "model.ckpt")["meta"]
    assert meta["target"] == "energy=energy_ev[eV]" and meta["forces_key"] == "forces_ev_a"
    run = mlflow.MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}").get_run(meta["run_id"])
    assert run.data.params["forces_fitted"] == "True"
    assert run.data.params["target"] == "energy=energy_ev[eV]"


def test_evaluate_reads_the_same_or_other_keys(mapped_model, tmp_path):
    tmp, data, _ = mapped_model
    result = invoke("evaluate", tmp / "ft", data, "-o", tmp_path / "same")
    assert result.exit_code == 0, result.output
    assert "forces MAE" in result.output  # the model's forces_key, found without options
    kcal = foreign_file(tmp_path / "kcal.extxyz", "E_kcal", "F_kcal", 0.0433641)
    result = invoke("evaluate", tmp / "ft", kcal, "--key", "E_kcal", "--unit", "kcal/mol",
                    "--forces-key", "F_kcal", "-o", tmp_path / "other")
    assert result.exit_code == 0, result.output
    same = float(result.output.split("MAE ")[1].split()[0])
    first = invoke("evaluate", tmp / "ft", data, "-o", tmp_path / "again")
    assert same == pytest.approx(float(first.output.split("MAE ")[1].split()[0]), rel=1e-3)


def test_checks_before_any_work(mapped_model, tmp_path, monkeypatch):
    tmp, data, _ = mapped_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    line = one_error(invoke("evaluate", tmp / "ft", data, "--mlflow", "-o", tmp_path / "ev"))
    assert "127.0.0.1:9" in line and not (tmp_path / "ev").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    job = tmp_path / "job.yaml"
    job.write_text(f"kind: predict\nmodel: {{source: {tmp_path / 'no-model'}}}\n")
    smi = tmp_path / "in.smi"
    smi.write_text("CCO a\n")
    line = one_error(invoke("submit", job, "--input", smi, "-o", tmp_path / "p.csv",
                            "--workers", "1", "--no-track"))
    assert "model not found" in line and "no-model" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.smi", "job.yaml"]


def test_an_encoder_that_is_not_a_checkpoint_is_one_line(mapped_model, tmp_path, monkeypatch):
    _, data, _ = mapped_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    junk = tmp_path / "encoder.pt"
    junk.write_bytes(np.random.default_rng(1).bytes(4000))
    line = one_error(invoke("finetune", "--data", data, "--set", "target=energy=energy_ev[eV]",
                            "--mode", "full", "--encoder", junk, "--epochs", "1",
                            "-o", tmp_path / "ft"))
    assert "encoder.pt" in line and "checkpoint" in line


def test_audit_of_random_bytes_is_an_error_and_default_names_molpres_corpus(tmp_path):
    frames = tmp_path / "eval.extxyz"
    foreign_file(frames, "energy", "forces")
    noise = tmp_path / "noise.smi"
    noise.write_bytes(np.random.default_rng(2).bytes(3000))
    line = one_error(invoke("audit", "--corpus", noise, "--eval", frames))
    assert "noise.smi" in line and "none of its" in line
    result = invoke("audit", "--corpus", "default", "--eval", frames, "--json")
    assert result.exit_code == 0, result.output
    assert '"corpus": ' in result.output and "first_5K.smi" in result.output
    assert int(result.output.split('"n_corpus": ')[1].split(",")[0]) > 4000
