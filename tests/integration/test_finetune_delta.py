"""Delta learning through finetune and the Predictor, with real PySCF (HF/STO-3G).

Labels are made so the answer is known: ``y = 0.7 * E_HF + sum_Z c_Z`` (eV), with E_HF the
HF/STO-3G energy of the same geometry, so ``y - 0.7 * E_HF`` is per-element linear. The
finetune must fit s = 0.7 from the cheap-level store, and the Predictor, computing HF/STO-3G
itself for geometries it never saw, must give back y to meV, which the model alone (the
delta part) is far from.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from molpre import Predictor
from molpre.data.datasets import labeled_from_atoms
from molpre.data.store import read_labels
from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import compute
from molpre.qc.runner import label_conformers
from molpre.train.finetune import finetune
from molpre.train.finetune_config import FinetuneConfig

LEVEL = LevelOfTheory("hf", "sto-3g")
C = {1: -12.0, 6: -1020.0, 7: -1470.0, 8: -2030.0}


def _rattled(name: str, k: int, seed: int):
    atoms = molecule(name)
    atoms.rattle(0.04, seed=seed)
    atoms.info.update(mol_id=f"{name}_{k}", charge=0, spin=1)
    return atoms


def _target(atoms, hf_energy: float) -> float:
    return 0.7 * hf_energy + sum(C[int(z)] for z in atoms.numbers)


@pytest.fixture(scope="module")
def delta_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("delta_ft")
    frames = [_rattled(n, k, 10 * i + k) for i, n in enumerate(("H2O", "NH3", "CH4"))
              for k in range(8)]
    label_conformers(frames, tmp / "cheap.db", LEVEL)
    hf = {a.info["mol_id"]: a.calc.results["energy"] for a in read_labels(tmp / "cheap.db")}
    labeled = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=_target(atoms, hf[atoms.info["mol_id"]]))
        labeled.append(atoms)
    data = labeled_from_atoms(labeled, "energy")
    config = FinetuneConfig(delta=str(tmp / "cheap.db"), epochs=2, batch_size=4, seed=0,
                            test_fraction=0.2, out=str(tmp / "ft"), experiment="delta-ft",
                            log_model=False, progress=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    result = finetune(config, data)
    yield result
    mp.undo()


def test_finetune_fits_the_scale_and_stores_the_cheap_level(delta_model):
    meta = Predictor.load(delta_model.checkpoint).meta["delta"]
    assert meta["scale"] == pytest.approx(0.7, abs=1e-6)
    assert meta["level"] == LEVEL.tag == "hf/sto-3g/df" and meta["forces"] is False
    assert delta_model.metrics["test_mae_mev"] < 20.0  # the residual is per-element linear


def test_predictor_computes_the_cheap_level_for_new_geometries(delta_model):
    predictor = Predictor.load(delta_model.checkpoint, progress=False)
    new = [_rattled("H2O", 99, 1234), _rattled("CH4", 99, 4321)]
    table = predictor.predict(new, ids=["water", "methane"])
    assert table["status"].tolist() == ["ok", "ok"]
    atomref = predictor.model.atomref.as_dict()
    for atoms, energy, rest in zip(new, table["energy_ev"], table["energy_minus_atomref_ev"],
                                   strict=True):
        expected = _target(atoms, compute(atoms, LEVEL).energy)
        assert energy == pytest.approx(expected, abs=0.03)
        # the target's per-element reference is the model's own atomref (no cheap bulk)
        assert rest == pytest.approx(energy - sum(atomref[int(z)] for z in atoms.numbers))
        assert abs(rest) < 5.0
    # an O-H bond stretched 0.2 A, far outside the training rattles: the cheap level carries it
    stretched = molecule("H2O")
    stretched.positions[1] += 0.2 * stretched.positions[1] / np.linalg.norm(stretched.positions[1])
    pair = [molecule("H2O"), stretched]
    energies = predictor.predict(pair, ids=["eq", "stretched"])["energy_ev"].to_numpy()
    expected = [_target(a, compute(a, LEVEL).energy) for a in pair]
    assert expected[1] - expected[0] > 0.2
    assert energies[1] - energies[0] == pytest.approx(expected[1] - expected[0], abs=0.03)
    model_only = [e - predictor.delta_term(a) for e, a in zip(energies, pair, strict=True)]
    assert abs((model_only[1] - model_only[0]) - (expected[1] - expected[0])) > 0.1
    calc = predictor.calculator()  # a delta model's calculator adds the cheap level too
    atoms = stretched.copy()
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(energies[1], abs=1e-4)


def test_a_failed_cheap_calculation_is_an_error_row(delta_model):
    predictor = Predictor.load(delta_model.checkpoint, progress=False)
    odd = molecule("H2O")
    odd.info.update(charge=0, spin=2)  # 10 electrons cannot be a doublet
    table = predictor.predict([odd], ids=["odd"])
    assert table["status"].tolist() == ["error"]
    assert "cheap level hf/sto-3g/df failed" in table["error"][0]


def test_the_cheap_level_runs_on_worker_processes_in_input_order(delta_model):
    odd = molecule("H2O")
    odd.info.update(charge=0, spin=2)
    inputs = [_rattled("H2O", 99, 11), odd, _rattled("CH4", 99, 12), _rattled("CH4", 98, 13)]
    ids = ["water", "odd", "methane", "methane2"]
    serial = Predictor.load(delta_model.checkpoint, progress=False).predict(inputs, ids=ids)
    pooled = Predictor.load(delta_model.checkpoint, progress=False, workers=2)
    table = pooled.predict(inputs, ids=ids)
    assert table["status"].tolist() == ["ok", "error", "ok", "ok"]
    assert "cheap level hf/sto-3g/df failed" in table["error"][1]
    ok = table["status"] == "ok"
    np.testing.assert_allclose(table.loc[ok, "energy_ev"], serial.loc[ok, "energy_ev"],
                               atol=1e-7)


def test_evaluate_computes_the_cheap_level_on_workers(delta_model, tmp_path):
    from molpre.inference.evaluation import evaluate_model

    frames = [_rattled(n, 97, 50 + i) for i, n in enumerate(("H2O", "NH3", "CH4", "H2O"))]
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=_target(atoms, compute(atoms, LEVEL).energy))
    data = labeled_from_atoms(frames, "energy")
    pooled = Predictor.load(delta_model.checkpoint, progress=False, workers=2)
    report = evaluate_model(pooled, data, tmp_path / "eval")
    assert report.metrics["n"] == 4 and report.metrics["mae_mev"] < 30.0


@pytest.fixture(scope="module")
def xtb_delta_model(tmp_path_factory):
    """Labels ``y = 0.8 * E_xTB + sum_Z c_Z`` with forces ``0.8 * F_xTB``: finetune with
    ``delta: gfn2-xtb`` computes xTB itself (energy and forces), fits s = 0.8 and learns a
    nearly zero residual."""
    pytest.importorskip("tblite.interface", reason="tblite is a dependency on Linux x86-64")
    from molpre.qc import compute as compute_any
    from molpre.qc import parse_level

    tmp = tmp_path_factory.mktemp("delta_xtb")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    xtb = parse_level("gfn2-xtb")
    labeled = []
    for i, name in enumerate(("H2O", "NH3", "CH4")):
        for k in range(8):
            atoms = _rattled(name, k, 10 * i + k)
            r = compute_any(atoms, xtb, forces=True)
            energy = 0.8 * r.energy + sum(C[int(z)] for z in atoms.numbers)
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=0.8 * r.forces)
            labeled.append(atoms)
    data = labeled_from_atoms(labeled, "energy", forces=True)
    config = FinetuneConfig(delta="gfn2-xtb", epochs=2, batch_size=4, seed=0, test_fraction=0.2,
                            out=str(tmp / "ft"), experiment="delta-xtb", log_model=False,
                            progress=False, forces=True)
    result = finetune(config, data)
    assert (tmp / "ft" / "cheap-gfn2-xtb.db").is_file()
    yield result
    mp.undo()


def test_delta_on_gfn2_xtb_with_forces_gives_a_calculator_whose_forces_are_the_gradient(
        xtb_delta_model):
    """The model's calculator adds xTB back at every geometry, so its forces are minus the
    gradient of its energy (finite differences) and match the labels."""
    from molpre.qc import compute as compute_any
    from molpre.qc import parse_level

    xtb = parse_level("gfn2-xtb")
    result = xtb_delta_model
    predictor = Predictor.load(result.checkpoint, progress=False, dtype="float64")
    assert predictor.delta.level == "gfn2-xtb" and predictor.delta.forces
    assert predictor.delta.scale == pytest.approx(0.8, abs=1e-6)
    atoms = _rattled("CH4", 99, 999)
    atoms.calc = predictor.calculator()
    forces = atoms.get_forces()
    h, fd = 1e-3, np.zeros(3)
    for k in range(3):
        plus, minus = atoms.copy(), atoms.copy()
        plus.calc = minus.calc = predictor.calculator()
        plus.positions[1, k] += h
        minus.positions[1, k] -= h
        fd[k] = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
    np.testing.assert_allclose(forces[1], fd, atol=5e-3)
    truth = 0.8 * compute_any(atoms, xtb, forces=True).forces
    assert np.abs(forces - truth).max() < 0.5  # the model's own part is a small residual


def test_the_xtb_level_is_computed_in_the_conformer_workers(xtb_delta_model, monkeypatch):
    """From SMILES with workers=2, the conformer workers compute xTB for their molecules: the
    parent never runs it (its engine is broken here), and every energy is the serial one."""
    import molpre.qc.engines

    smiles = ["CCO", "CN", "O", "C#N", "CC(=O)N"]
    serial = Predictor.load(xtb_delta_model.checkpoint, progress=False, n_conformers=2)
    expected = serial.predict(smiles)
    assert expected["status"].tolist() == ["ok"] * len(smiles)

    def broken(*args, **kwargs):
        raise AssertionError("the cheap level ran in the parent process")

    monkeypatch.setattr(molpre.qc.engines, "compute_many", broken)
    pooled = Predictor.load(xtb_delta_model.checkpoint, progress=False, n_conformers=2,
                            workers=2)
    table = pooled.predict(smiles)
    assert table["status"].tolist() == ["ok"] * len(smiles)
    np.testing.assert_allclose(table["energy_ev"], expected["energy_ev"], rtol=0, atol=1e-6)
    with pytest.raises(AssertionError, match="parent process"):
        pooled.predict([molecule("CH4")])  # the patch bites: a given geometry is computed here
