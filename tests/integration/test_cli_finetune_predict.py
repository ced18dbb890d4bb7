"""`molpre finetune` then `molpre predict`, in-process, on 80 QM9 molecules with --epochs 2."""

import ase.io
import pandas as pd
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.datasets import read_frames


@pytest.fixture(scope="module")
def labels(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "qm9_80.extxyz"
    ase.io.write(path, read_frames(shared_data / "qm9_sample3000.extxyz.gz")[:80], format="extxyz")
    return path


def test_finetune_then_predict(labels, tmp_path, mlflow_uri):
    runner = CliRunner()
    out = tmp_path / "ft"
    ids = tmp_path / "test_ids.txt"
    ids.write_text("\n".join(f"gdb_{1 + 40 * k}" for k in range(10)) + "\n")
    result = runner.invoke(main, [
        "finetune", "--data", str(labels), "--target", "u0_atom", "--unit", "kcal/mol",
        "--budget", "30", "--test-ids", str(ids), "--epochs", "2", "--batch-size", "8",
        "--seed", "1", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "10 test; test MAE" in result.output and "kcal/mol" in result.output
    for name in ("model.ckpt", "metrics.json", "parity.png", "model/MLmodel"):
        assert (out / name).is_file(), name
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nC1CC broken\nCS thiol\nc1ccccc1 benzene\n")
    csv = tmp_path / "pred.csv"
    result = runner.invoke(main, ["predict", str(smi), "--model", str(out), "--conformers", "2",
                                  "-o", str(csv)])
    assert result.exit_code == 0, result.output
    assert "predicted 2 molecules, 2 errors" in result.output
    table = pd.read_csv(csv)
    assert table["id"].tolist() == ["ethanol", "broken", "thiol", "benzene"]
    assert table["status"].tolist() == ["ok", "error", "error", "ok"]
    assert table["energy_ev"].isna().tolist() == [False, True, True, False]


def test_cli_errors_are_one_clear_line(labels, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["finetune", "--data", str(labels), "--mode", "probe",
                                  "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "needs an encoder checkpoint" in result.output
    assert "Traceback" not in result.output
    smi = tmp_path / "in.smi"
    smi.write_text("CCO\n")
    result = runner.invoke(main, ["predict", str(smi), "--model", str(tmp_path / "missing"),
                                  "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "model not found" in result.output
    result = runner.invoke(main, ["finetune", "--help"])
    assert result.exit_code == 0 and "--test-first" in result.output
