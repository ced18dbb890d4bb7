"""Screening ergonomics: DataFrames in (SMILES any case, columns kept, rows in order),
atomization-style energies, conformers on worker processes, a progress bar, embeddings."""

import numpy as np
import pandas as pd
import pytest
from ase.build import molecule

from molpre.inference.predictor import COLUMNS


def test_a_dataframe_keeps_its_rows_columns_and_index(predictor):
    frame = pd.DataFrame({"SMILES": ["CCO", "C1CC", "c1ccccc1"], "name": ["eth", "bad", "bz"],
                          "activity": [1.5, 2.5, 3.5]}, index=[10, 20, 30])
    df = predictor.predict(frame)
    assert list(df.columns) == ["SMILES", "name", "activity", *COLUMNS]
    assert df.index.tolist() == [10, 20, 30]
    assert df["id"].tolist() == ["eth", "bad", "bz"]
    assert df["activity"].tolist() == [1.5, 2.5, 3.5]
    assert df["status"].tolist() == ["ok", "error", "ok"]
    single = predictor.predict(["CCO", "c1ccccc1"])["energy_ev"].to_numpy()
    np.testing.assert_allclose(df.loc[[10, 30], "energy_ev"], single, atol=1e-9)
    table = predictor.model.atomref.as_dict()
    ethanol_reference = 2 * table[6] + 6 * table[1] + table[8]
    assert df.loc[10, "energy_minus_atomref_ev"] == pytest.approx(
        df.loc[10, "energy_ev"] - ethanol_reference, abs=1e-9)


def test_dataframe_columns_named_or_clashing(predictor):
    frame = pd.DataFrame({"smiles": ["CC"], "id": ["x"], "Mol": ["CO"]})
    df = predictor.predict(frame, smiles_col="mol", id_col="smiles")
    assert df.loc[0, "smiles"] == "CO" and df.loc[0, "id"] == "CC"
    assert list(df.columns[:3]) == ["input_smiles", "input_id", "Mol"]
    with pytest.raises(ValueError, match="no SMILES column"):
        predictor.predict(pd.DataFrame({"x": ["CC"]}))
    with pytest.raises(ValueError, match="no SMILES column 'nope'"):
        predictor.predict(frame, smiles_col="nope")
    out = predictor.predict_frame(pd.DataFrame({"SMILES": ["CCO", "Q"]}))
    assert out["status"].tolist() == ["ok", "error"] and out.index.tolist() == [0, 1]


def test_worker_processes_give_the_same_rows(predictor):
    smiles = ["CCO", "CC(=O)O", "c1ccccc1", "CCN", "C1CC", "CCCC"]
    one = predictor.configure(workers=1).predict(smiles)
    two = predictor.configure(workers=2).predict(smiles)
    predictor.configure(workers=1)
    pd.testing.assert_frame_equal(one, two)


def test_progress_bar_with_total_or_none(predictor, capsys):
    predictor.configure(progress=True).predict(["CC", "CO", "CN"])
    assert "3/3" in capsys.readouterr().err
    predictor.configure(progress=False).predict(["CC", "CO", "CN"])
    assert capsys.readouterr().err == ""


def test_embeddings_are_one_vector_per_ok_molecule(predictor):
    df = predictor.embed(["CCO", "C1CC", molecule("H2O")])
    assert df["status"].tolist() == ["ok", "error", "ok"]
    assert df.loc[1, "embedding"] is None
    width = predictor.model.encoder.feature_dim
    assert df.loc[0, "embedding"].shape == (width,) and np.isfinite(df.loc[2, "embedding"]).all()
    assert not np.allclose(df.loc[0, "embedding"], df.loc[2, "embedding"])
