"""Finetuning end to end on the QM9 sample: learning, tracking, the pyfunc and the calculator."""

import json

import numpy as np
import pytest
from ase.build import molecule
from ase.optimize import BFGS

from molpre.data.datasets import load_labeled
from molpre.inference import predict_energies
from molpre.inference.predictor import Predictor
from molpre.models.checkpoint import load_checkpoint
from molpre.train.finetune import finetune
from molpre.train.finetune_config import FinetuneConfig


@pytest.fixture(scope="module")
def qm9_small(shared_data):
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol")
    return data.subset(range(300))


@pytest.fixture(scope="module")
def trained(qm9_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    mp = pytest.MonkeyPatch()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    config = FinetuneConfig(
        data="qm9-subset", target="u0_atom", unit="kcal/mol", budget=60, test_fraction=0.1,
        epochs=20, batch_size=8, lr=1e-2, patience=30, seed=0, out=str(root / "out"),
        progress=False, threads=1, register_name="molpre-qm9-test",
    )
    result = finetune(config, data=qm9_small)
    yield result, uri
    mp.undo()


def test_finetune_beats_the_atomref_baseline_on_held_out_molecules(trained):
    result, _ = trained
    m = result.metrics
    assert result.split_sizes == {"train": 54, "val": 6, "test": 30}
    assert m["test_n"] == 30
    assert m["test_mae_mev"] < 0.9 * m["baseline_test_mae_mev"]
    assert m["test_mae_kcal"] == pytest.approx(m["test_mae_mev"] / 43.364, rel=1e-3)
    assert m["best_val_mae_mev"] < m["step0_val_mae_mev"]
    out = result.out
    assert (out / "parity.png").stat().st_size > 1000
    assert json.loads((out / "metrics.json").read_text())["test_mae_mev"] == m["test_mae_mev"]
    assert (out / "model" / "MLmodel").is_file()


def test_run_records_config_step0_and_epoch_curves(trained):
    import mlflow

    result, uri = trained
    client = mlflow.MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.data.params["mode"] == "scratch" and run.data.params["budget"] == "60"
    assert "git_sha" in run.data.tags and "dataset.labels" in run.data.tags
    steps = [m.step for m in client.get_metric_history(result.run_id, "val_mae_mev")]
    assert steps[0] == 0 and len(steps) == len(result.history) + 1
    assert len(client.get_metric_history(result.run_id, "train_mae_mev")) == len(result.history)
    assert run.data.metrics["test_rmse_kcal"] > 0


def test_checkpoint_rebuilds_the_model_and_pyfunc_gives_the_same_numbers(trained, qm9_small):
    result, _ = trained
    model, payload = load_checkpoint(result.checkpoint)
    assert payload["config"]["mode"] == "scratch" and payload["meta"]["target"] == "u0_atom"
    frames = qm9_small.atoms[:5]
    direct = Predictor(result.model, payload["meta"]["cutoff"]).predict(frames)
    sources = (result.model_uri, "models:/molpre-qm9-test/1", str(result.out), str(result.checkpoint))
    for source in sources:
        loaded = Predictor.load(source).predict(frames)
        np.testing.assert_allclose(loaded["energy_ev"], direct["energy_ev"], rtol=0, atol=1e-6)
    smiles = Predictor.load(result.model_uri).predict(["CCO", "C1CC1", "bad(("])
    again = Predictor(result.model, payload["meta"]["cutoff"]).predict(["CCO", "C1CC1", "bad(("])
    np.testing.assert_allclose(smiles["energy_ev"][:2], again["energy_ev"][:2], atol=1e-6)
    assert smiles["status"].tolist() == ["ok", "ok", "error"]
    assert predict_energies(model, []).shape == (0,)


def test_missing_mlflow_models_give_one_clear_error(trained):
    from molpre.inference.predictor import ModelLoadError

    with pytest.raises(ModelLoadError, match="cannot load model runs:/0123456789abcdef/model"):
        Predictor.load("runs:/0123456789abcdef/model")
    with pytest.raises(ModelLoadError, match="nope"):
        Predictor.load("models:/nope/1")


def test_calculator_drives_bfgs_on_water_to_lower_energy(trained):
    result, _ = trained
    predictor = Predictor.load(str(result.checkpoint))
    water = molecule("H2O")
    water.positions[1] += [0.15, 0.1, -0.05]  # stretch one O-H bond
    water.calc = predictor.calculator()
    start = water.get_potential_energy()
    forces = water.get_forces()
    assert forces.shape == (3, 3) and np.isfinite(forces).all()
    BFGS(water, logfile=None).run(fmax=0.05, steps=60)
    assert water.get_potential_energy() < start - 1e-3


def test_pyfunc_takes_a_smiles_table_or_xyz_geometries(trained, qm9_small):
    import io

    import ase.io
    import mlflow
    import pandas as pd

    result, _ = trained
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    frames = qm9_small.atoms[:3]
    texts = []
    for atoms in frames:
        handle = io.StringIO()
        ase.io.write(handle, atoms, format="extxyz")
        texts.append(handle.getvalue())
    table = pd.DataFrame({"smiles": [a.info["smiles"] for a in frames], "xyz": texts,
                          "id": ["a", "b", "c"]})
    out = pyfunc.predict(table)
    direct = Predictor.load(result.model_uri).predict(frames)
    assert out["id"].tolist() == ["a", "b", "c"]
    assert (out["n_conformers"] == 1).all()
    np.testing.assert_allclose(out["energy_ev"], direct["energy_ev"], atol=1e-6)
    boltz = pyfunc.predict(pd.DataFrame({"smiles": ["CCCO", "Q"]}),
                           params={"aggregation": "boltzmann", "n_conformers": 3})
    assert boltz["status"].tolist() == ["ok", "error"]


def test_the_split_is_written_with_the_model(trained, qm9_small):
    """Which molecules a model was trained, validated and tested on, readable as a plain CSV
    in OUT, inside the model folder and in the run's model artifact (as chemprop does)."""
    import mlflow
    import pandas as pd

    result, uri = trained
    table = pd.read_csv(result.out / "split.csv", keep_default_na=False)
    assert list(table.columns) == ["mol_id", "part", "row", "group", "smiles"]
    assert table["part"].value_counts().to_dict() == result.split_sizes
    assert table["row"].is_monotonic_increasing and table["row"].is_unique
    assert table["mol_id"].tolist() == [qm9_small.mol_ids[r] for r in table["row"]]
    parts_of_group = table.groupby("group")["part"].nunique()
    assert (parts_of_group == 1).all()  # a molecule never straddles two parts
    inside = result.out / "model" / "artifacts" / "split.csv"
    assert inside.read_text() == (result.out / "split.csv").read_text()
    local = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model/artifacts/split.csv",
                                                tracking_uri=uri)
    assert pd.read_csv(local, keep_default_na=False).equals(table)


def test_a_split_file_is_the_next_finetunes_split(trained, qm9_small, tmp_path):
    """``split_file``: a finetune on a model's split.csv trains, validates and tests on the
    same molecules (and writes the same file); it cannot be mixed with a budget."""
    from molpre.config import ConfigError

    result, _ = trained
    again = finetune(FinetuneConfig(
        data="qm9-subset", target="u0_atom", unit="kcal/mol",
        split_file=str(result.out / "split.csv"), epochs=1, batch_size=8, seed=5,
        out=str(tmp_path / "again"), progress=False, threads=1, log_model=False),
        data=qm9_small)
    assert again.split_sizes == result.split_sizes
    assert (tmp_path / "again" / "split.csv").read_text() == (result.out / "split.csv").read_text()
    with pytest.raises(ConfigError, match="split_file gives the whole split"):
        FinetuneConfig(split_file=str(result.out / "split.csv"), budget=10)
