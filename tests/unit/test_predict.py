"""Predictor: one row per input, error rows for bad input, loading errors, aggregation."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from rdkit import Chem

from molpre.inference.predictor import ModelLoadError, Predictor, aggregate
from molpre.models.checkpoint import FORMAT, save_checkpoint


def test_bad_inputs_become_error_rows_never_numbers(predictor):
    inputs = ["CCO", "C1CC", "CS", "[Si](C)(C)(C)C", "", molecule("H2O"), 42, Chem.MolFromSmiles("CN")]
    df = predictor.predict(inputs)
    assert list(df.columns) == ["id", "smiles", "energy_ev", "energy_minus_atomref_ev", "status",
                                "error", "n_conformers"]
    assert len(df) == len(inputs)
    assert df["status"].tolist() == ["ok", "error", "error", "error", "error", "ok", "error", "ok"]
    bad = df[df["status"] == "error"]
    assert bad["energy_ev"].isna().all() and (bad["n_conformers"] == 0).all()
    assert "SMILES" in df.loc[1, "error"]
    assert "unsupported element S" in df.loc[2, "error"]
    assert "Si" in df.loc[3, "error"]
    assert "unsupported input type" in df.loc[6, "error"]
    assert df.loc[0, "id"] == "mol-1" and df.loc[0, "smiles"] == "CCO"
    assert np.isfinite(df.loc[[0, 5, 7], "energy_ev"]).all()


def test_a_failed_conformer_is_an_error_row(predictor, monkeypatch):
    import molpre.chem.stream

    def fail(record, n=1, seed=0, config=None):
        raise molpre.chem.ConformerError("embedding failed: test")

    monkeypatch.setattr(molpre.chem.stream, "embed_conformers", fail)
    df = predictor.predict(["CCO", "CC"], ids=["a", "b"])
    assert df["status"].tolist() == ["error", "error"]
    assert df["id"].tolist() == ["a", "b"]
    assert df["error"].str.contains("conformer generation failed").all()


def test_batched_equals_one_at_a_time_and_seeded(predictor):
    smiles = ["CCO", "CC(=O)O", "c1ccccc1", "CCN"]
    together = predictor.configure(batch_size=64).predict(smiles)["energy_ev"].to_numpy()
    single = [predictor.configure(batch_size=1).predict([s])["energy_ev"][0] for s in smiles]
    np.testing.assert_allclose(together, single, rtol=0, atol=1e-6)
    predictor.configure(batch_size=64)


def test_aggregation_lowest_and_boltzmann():
    energies = np.array([-1.0, -0.9, -0.2])
    assert aggregate(energies, "lowest") == -1.0
    cold, hot = aggregate(energies, "boltzmann", 1.0), aggregate(energies, "boltzmann", 1e8)
    assert cold == pytest.approx(-1.0) and hot == pytest.approx(energies.mean(), abs=1e-3)
    with pytest.raises(ValueError):
        aggregate(energies, "mean")


def test_loading_missing_or_incompatible_models_is_one_clear_error(tmp_path, predictor):
    with pytest.raises(ModelLoadError, match="not found"):
        Predictor.load(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="no molpre model"):
        Predictor.load(tmp_path)
    old = tmp_path / "old.ckpt"
    torch.save({"format": "molpre.finetune/0", "state_dict": {}}, old)
    with pytest.raises(ModelLoadError, match="format"):
        Predictor.load(old)
    text = tmp_path / "junk.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a readable"):
        Predictor.load(text)
    good = save_checkpoint(predictor.model, tmp_path / "model.ckpt", meta={"cutoff": 4.5})
    assert torch.load(good, weights_only=True)["format"] == FORMAT
    loaded = Predictor.load(tmp_path)
    water = molecule("H2O")
    assert loaded.predict([water])["energy_ev"][0] == pytest.approx(
        predictor.predict([water])["energy_ev"][0], abs=1e-6)


def test_calculator_refuses_unsupported_elements(predictor):
    from ase.calculators.calculator import CalculatorError

    atoms = molecule("SiH4")
    atoms.calc = predictor.calculator()
    with pytest.raises(CalculatorError, match="unsupported element Si"):
        atoms.get_potential_energy()
