"""Predictions never made up: checked geometries, one failure per row (also out of memory in a
batch), clear errors for bad calls; device and float64 handling of the Predictor and calculator."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import CalculatorError

from molpre.data import keys
from molpre.inference.predictor import Predictor, resolve_device


def test_unusable_geometries_are_their_own_error_rows(predictor):
    nan = molecule("H2O")
    nan.positions[0, 0] = np.nan
    overlap = molecule("CH4")
    overlap.positions[1] = overlap.positions[0] + [0.1, 0.0, 0.0]
    rng = np.random.default_rng(0)
    huge = Atoms("C" * 10_000, positions=rng.uniform(0, 60, (10_000, 3)))
    periodic = molecule("H2O", pbc=True, cell=[5, 5, 5])
    inputs = [molecule("H2O"), nan, Atoms(), huge, overlap, molecule("SiH4"), periodic,
              molecule("NH3")]
    df = predictor.predict(inputs)
    assert df["status"].tolist() == ["ok"] + ["error"] * 6 + ["ok"]
    reasons = df["error"].tolist()
    assert "non-finite" in reasons[1] and "empty" in reasons[2]
    assert "too large: 10000 atoms > 200" in reasons[3] and "overlapping atoms 0 and 1" in reasons[4]
    assert "unsupported element Si" in reasons[5] and "periodic" in reasons[6]
    assert df.loc[1:6, "energy_ev"].isna().all()
    alone = predictor.predict([molecule("H2O"), molecule("NH3")])["energy_ev"].to_numpy()
    np.testing.assert_allclose(df.loc[[0, 7], "energy_ev"], alone, rtol=0, atol=1e-9)
    assert predictor.configure(max_atoms=4).predict([molecule("CH4")])["status"][0] == "error"
    predictor.configure(max_atoms=200)


def test_a_batch_that_runs_out_of_memory_is_retried_until_one_input_fails_alone(
        predictor, monkeypatch):
    inputs = [molecule(name) for name in ("H2O", "CH4", "NH3", "C2H6", "CH3OH")]
    expected = predictor.predict(inputs)["energy_ev"].to_numpy()
    forward, sizes = predictor.model.forward, []

    def out_of_memory_with_nitrogen(batch, **kwargs):
        sizes.append(int(batch[keys.NUM_GRAPHS]))
        if (batch[keys.ATOMIC_NUMBERS] == 7).any():
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.2 GiB")
        return forward(batch, **kwargs)

    monkeypatch.setattr(predictor.model, "forward", out_of_memory_with_nitrogen)
    df = predictor.configure(batch_size=64).predict(inputs)
    assert df["status"].tolist() == ["ok", "ok", "error", "ok", "ok"]
    assert df.loc[2, "error"] == "model evaluation failed: CUDA out of memory. Tried to allocate 2.2 GiB"
    np.testing.assert_allclose(df["energy_ev"].drop(index=2), np.delete(expected, 2), atol=1e-9)
    assert sizes[0] == 5 and 1 in sizes  # the whole batch first, then smaller, then alone

    def memory_error(batch, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(predictor.model, "forward", memory_error)
    df = predictor.predict(["CCO", "CC"])
    assert df["status"].tolist() == ["error", "error"]
    assert (df["error"] == "model evaluation failed: MemoryError").all()


def test_bad_calls_are_one_clear_value_error(predictor):
    with pytest.raises(ValueError, match="got None"):
        predictor.predict(None)
    with pytest.raises(ValueError, match="ids has 1 entries for 2 inputs"):
        predictor.predict(["CCO", "CC"], ids=["a"])
    with pytest.raises(ValueError, match="cannot read a int"):
        predictor.predict(42)


def test_device_auto_is_cuda_only_when_torch_sees_one(monkeypatch, predictor, tmp_path):
    from molpre.models.checkpoint import save_checkpoint

    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="torch sees no GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    save_checkpoint(predictor.model, tmp_path / "model.ckpt", meta={"cutoff": 4.5})
    loaded = Predictor.load(tmp_path, device="auto", progress=False)
    assert loaded.device == torch.device("cpu")
    assert loaded.calculator().model is loaded.model


def _finite_difference_forces(atoms, h: float) -> np.ndarray:
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.calc = atoms.calc
                moved.positions[i, k] += sign * h
                energies.append(moved.get_potential_energy())
            forces[i, k] = -(energies[0] - energies[1]) / (2 * h)
    return forces


def test_float64_model_forces_match_finite_differences_and_see_tiny_moves(predictor):
    double = Predictor(predictor.model, predictor.cutoff, dtype="float64", progress=False)
    atoms = molecule("CH3OH")
    atoms.positions += np.random.default_rng(1).normal(0, 0.05, atoms.positions.shape)
    atoms.calc = double.calculator()
    forces = atoms.get_forces()
    assert forces.dtype == np.float64 and double.model is not predictor.model
    np.testing.assert_allclose(forces, _finite_difference_forces(atoms, 1e-4), atol=1e-6)
    moved = atoms.copy()
    moved.calc = atoms.calc
    moved.positions[0, 0] += 1e-9  # below float32 resolution at ~1 Angstrom
    change = moved.get_potential_energy() - atoms.get_potential_energy()
    assert change == pytest.approx(-forces[0, 0] * 1e-9, rel=1e-2)


def test_calculator_refuses_geometries_it_cannot_describe(predictor):
    for atoms, reason in [(Atoms(), "no atoms"), (molecule("H2O", pbc=True, cell=[5] * 3),
                                                  "periodic")]:
        atoms.calc = predictor.calculator()
        with pytest.raises(CalculatorError, match=reason):
            atoms.get_potential_energy()
    nan = molecule("H2O")
    nan.positions[0, 0] = np.nan
    nan.calc = predictor.calculator()
    with pytest.raises(CalculatorError, match="non-finite"):
        nan.get_potential_energy()
