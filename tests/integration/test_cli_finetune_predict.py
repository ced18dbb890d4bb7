"""`molpre finetune` then `molpre predict`, `evaluate` and `embed`, in-process, on 80 QM9
molecules with --epochs 2."""

import json

import ase.io
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.datasets import read_frames

TEST_IDS = [f"gdb_{1 + 40 * k}" for k in range(10)]


@pytest.fixture(scope="module")
def labels(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "qm9_80.extxyz"
    ase.io.write(path, read_frames(shared_data / "qm9_sample3000.extxyz.gz")[:80], format="extxyz")
    return path


@pytest.fixture(scope="module")
def finetuned(labels, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    mp.chdir(tmp)
    ids = tmp / "test_ids.txt"
    ids.write_text("\n".join(TEST_IDS) + "\n")
    out = tmp / "ft"
    result = CliRunner().invoke(main, [
        "finetune", "--data", str(labels), "--target", "u0_atom", "--unit", "kcal/mol",
        "--budget", "30", "--test-ids", str(ids), "--epochs", "2", "--batch-size", "8",
        "--seed", "1", "-o", str(out),
    ])
    yield out, result
    mp.undo()


def test_finetune_then_predict(finetuned, tmp_path):
    out, result = finetuned
    assert result.exit_code == 0, result.output
    assert "10 test; test MAE" in result.output and "kcal/mol" in result.output
    for name in ("model.ckpt", "metrics.json", "parity.png", "model/MLmodel"):
        assert (out / name).is_file(), name
    runner = CliRunner()
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


def test_predict_keeps_csv_columns_with_two_workers(finetuned, tmp_path):
    out, _ = finetuned
    source = tmp_path / "moses.csv"
    source.write_text("SMILES,SPLIT,score\nCCO,train,1.5\nC1CC,test,2\nc1ccccc1,train,3\n")
    csv = tmp_path / "pred.csv"
    result = CliRunner().invoke(main, ["predict", str(source), "--model", str(out),
                                       "--conformers", "2", "--workers", "2", "-o", str(csv)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(csv)
    assert list(table.columns[:3]) == ["SMILES", "SPLIT", "score"]
    assert table["SPLIT"].tolist() == ["train", "test", "train"]
    assert table["id"].tolist() == ["moses-1", "moses-2", "moses-3"]
    assert table["status"].tolist() == ["ok", "error", "ok"]
    assert "energy_minus_atomref_ev" in table.columns
    assert not list(tmp_path.glob(".pred.csv.*"))  # the temporary file was renamed


def test_evaluate_reproduces_the_finetune_test_mae(finetuned, labels, tmp_path, monkeypatch):
    out, _ = finetuned
    frames = [a for a in read_frames(labels) if a.info["mol_id"] in TEST_IDS]
    test_file = tmp_path / "test.extxyz"
    ase.io.write(test_file, frames, format="extxyz")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evaluate", str(out), str(test_file), "--mlflow",
                                       "-o", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert "10 conformers, u0_atom: MAE" in result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    trained = json.loads((out / "metrics.json").read_text())
    assert metrics["mae_mev"] == pytest.approx(trained["test_mae_mev"], rel=1e-6)
    assert metrics["rmse_mev"] == pytest.approx(trained["test_rmse_mev"], rel=1e-6)
    assert (tmp_path / "eval" / "parity.png").stat().st_size > 1000
    import mlflow

    runs = mlflow.search_runs(experiment_names=["molpre"])
    assert runs["metrics.mae_mev"].iloc[0] == pytest.approx(metrics["mae_mev"])


def test_evaluate_scores_forces_when_the_file_has_them(finetuned, tmp_path):
    from ase.build import molecule
    from ase.calculators.singlepoint import SinglePointCalculator

    from molpre.inference.predictor import Predictor

    out, _ = finetuned
    predictor = Predictor.load(out, progress=False)
    frames = []
    for name in ("H2O", "CH4", "NH3"):
        atoms = molecule(name)
        atoms.calc = predictor.calculator()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy + 0.01, forces=forces + 0.002)
        frames.append(atoms)
    path = tmp_path / "forces.extxyz"
    ase.io.write(path, frames, format="extxyz")
    result = CliRunner().invoke(main, ["evaluate", str(out), str(path), "--target", "energy",
                                       "--unit", "eV", "-o", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["mae_mev"] == pytest.approx(10.0, abs=1e-3)
    assert metrics["forces_mae_mev_per_a"] == pytest.approx(2.0, abs=1e-2)


def test_embed_writes_one_vector_per_molecule(finetuned, tmp_path):
    out, _ = finetuned
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nC1CC broken\nc1ccccc1 benzene\n")
    parquet = tmp_path / "emb.parquet"
    result = CliRunner().invoke(main, ["embed", str(out), str(smi), "--conformers", "1",
                                       "-o", str(parquet)])
    assert result.exit_code == 0, result.output
    assert "embedded 2 molecules, 1 errors" in result.output
    table = pd.read_parquet(parquet)
    assert table["id"].tolist() == ["ethanol", "broken", "benzene"]
    vectors = table["embedding"].tolist()
    assert vectors[1] is None and len(vectors[0]) == len(vectors[2]) > 8
    assert not np.allclose(vectors[0], vectors[2])


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
    for command in ("finetune", "evaluate", "embed", "predict"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, command
    assert "--test-first" in runner.invoke(main, ["finetune", "--help"]).output
