"""Committees: spreads grow away from training, the calibrated ood flag, round trips, calculator.

A tiny committee (3 members, a 1-layer 8-channel encoder) is fitted in-process on EMT energies
of rattled small molecules (at most 6 atoms), calibrated on more rattles, then probed on new
rattles (training-like), on the same molecules with one bond stretched 1.5x, and on propane
(11 atoms, larger than any training molecule).
"""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pytest
import torch
import yaml
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.graph import atoms_to_sample, collate
from molpre.inference.calculator import MolpreCalculator, OutOfDomainWarning
from molpre.inference.predictor import Predictor
from molpre.models.atomref import fit_atomref
from molpre.models.checkpoint import COMMITTEE_FORMAT, read_checkpoint, save_checkpoint
from molpre.models.committee import Committee, Domain, calibrate, committee_spreads
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

NAMES = ["H2O", "NH3", "CH4", "CH3OH", "C2H2", "HCN", "H2CO"]
CUTOFF = 4.5
RATTLE = 0.02  # Angstrom


def emt_frames(per_molecule: int, seed: int) -> list:
    """Rattled (RATTLE) copies of NAMES with EMT energies (eV)."""
    frames = []
    for i, name in enumerate(NAMES):
        for k in range(per_molecule):
            atoms = molecule(name)
            atoms.rattle(RATTLE, seed=seed + 100 * i + k)
            atoms.calc = EMT()
            atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
            frames.append(atoms)
    return frames


def stretched(atoms, factor: float = 1.5):
    """``atoms`` with its first bond (atom 0 to its nearest neighbour) scaled by ``factor``."""
    atoms = atoms.copy()
    distances = atoms.get_distances(0, range(1, len(atoms)))
    j = 1 + int(np.argmin(distances))
    atoms.positions[j] = atoms.positions[0] + factor * (atoms.positions[j] - atoms.positions[0])
    return atoms


def fitted_member(frames, atomref, seed: int) -> EnergyModel:
    """One member: a tiny encoder trained (full batch, Adam) on ``frames``' energies."""
    torch.manual_seed(seed)
    encoder = build_encoder("small", channels=8, num_layers=1, radial_mlp_width=8)
    model = EnergyModel(encoder, atomref, energy_scale=0.05)
    batch = collate([atoms_to_sample(a, CUTOFF, energy=a.get_potential_energy()) for a in frames])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(250):
        loss = (model(batch)["predicted_energy"] - batch["energy"]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def committee_ckpt(tmp_path_factory):
    train, val = emt_frames(6, 0), emt_frames(3, 5000)
    atomref = fit_atomref([a.numbers for a in train], [a.get_potential_energy() for a in train])
    committee = Committee([fitted_member(train, atomref, seed) for seed in range(3)])
    domain = calibrate(committee, [atoms_to_sample(a, CUTOFF) for a in val],
                       max_atoms=max(len(a) for a in train))
    path = tmp_path_factory.mktemp("committee") / "model.ckpt"
    meta = {"cutoff": CUTOFF, "columns": ["energy_ev"], "domain": domain.to_dict()}
    return save_checkpoint(committee, path, meta=meta)


@pytest.fixture(scope="module")
def predictor(committee_ckpt):
    return Predictor.load(committee_ckpt, device="cpu", progress=False)


def test_spread_grows_on_stretched_bonds_and_the_flag_fires_only_there(predictor):
    near = emt_frames(1, 9000)  # new rattles of the training molecules
    far = [stretched(a) for a in near]
    df_near, df_far = predictor.predict(near), predictor.predict(far)
    assert (df_near["status"] == "ok").all() and (df_far["status"] == "ok").all()
    assert df_far["energy_ev_std"].mean() > 3 * df_near["energy_ev_std"].mean()
    assert not df_near["ood"].any(), df_near[["energy_ev_std", "ood_reason"]]
    assert df_far["ood"].sum() >= 5, df_far[["energy_ev_std", "ood_reason"]]  # of 7
    assert df_far.loc[df_far["ood"], "ood_reason"].str.contains("committee spread").all()


def test_a_molecule_larger_than_training_ones_is_flagged_with_a_larger_spread(predictor):
    near = predictor.predict(emt_frames(1, 9100))
    big = predictor.predict([molecule("C3H8")])
    assert big.loc[0, "energy_ev_std"] > near["energy_ev_std"].max()
    assert bool(big.loc[0, "ood"])
    assert "11 atoms: larger than any training molecule (6)" in big.loc[0, "ood_reason"]


def test_columns_mean_and_std_and_error_rows(predictor, committee_ckpt):
    df = predictor.predict(["CO", "CS", molecule("H2O")])
    assert list(df.columns) == ["id", "smiles", "energy_ev", "energy_ev_std",
                                "energy_minus_atomref_ev", "ood", "ood_reason", "status", "error",
                                "n_conformers"]
    assert df["status"].tolist() == ["ok", "error", "ok"]
    assert np.isnan(df.loc[1, "energy_ev_std"]) and not df.loc[1, "ood"]
    members = [Predictor(m, CUTOFF, progress=False).predict([molecule("H2O")])["energy_ev"][0]
               for m in predictor.model.members]
    assert df.loc[2, "energy_ev"] == pytest.approx(np.mean(members), abs=1e-6)
    assert df.loc[2, "energy_ev_std"] == pytest.approx(np.std(members), abs=1e-6)


def test_committee_round_trips_through_checkpoint_and_pyfunc(committee_ckpt, predictor, tmp_path):
    from molpre.inference.pyfunc import save_pyfunc_model

    payload = torch.load(committee_ckpt, weights_only=True)
    assert payload["format"] == COMMITTEE_FORMAT and len(payload["members"]) == 3
    assert payload["meta"]["committee"] == 3
    assert Domain.from_meta(read_checkpoint(committee_ckpt)["meta"]) == predictor.domain
    frames = [molecule("CH3OH"), stretched(molecule("H2O"))]
    direct = predictor.predict(frames)
    folder = save_pyfunc_model(committee_ckpt, tmp_path / "model")
    outputs = yaml.safe_load((folder / "MLmodel").read_text())["signature"]["outputs"]
    names = {col["name"]: col["type"] for col in yaml.safe_load(outputs)}
    assert names["energy_ev_std"] == "double" and names["ood"] == "boolean"
    assert names["ood_reason"] == "string"
    loaded = Predictor.load(folder, device="cpu", progress=False).predict(frames)
    served = mlflow.pyfunc.load_model(str(folder)).predict(
        __import__("pandas").DataFrame({"SMILES": ["CO"], "note": ["x"]}))
    assert served.loc[0, "status"] == "ok" and served.loc[0, "energy_ev_std"] > 0
    assert served.loc[0, "note"] == "x"
    for column in ("energy_ev", "energy_ev_std"):
        np.testing.assert_allclose(loaded[column], direct[column], rtol=0, atol=1e-6)
    assert loaded["ood"].tolist() == direct["ood"].tolist()


def _energy_spread_per_atom(predictor, atoms) -> float:
    """The committee's energy spread of ``atoms`` in eV/atom (std over members)."""
    spreads = committee_spreads(predictor.model, [atoms_to_sample(atoms, CUTOFF)])
    return float(spreads["energy_ev"][0]) / len(atoms)


def test_calculator_results_hold_spreads_and_warn_once_per_call_site(predictor):
    """The calculator's wiring, by construction: its domain threshold is set between the
    spreads of two geometries (whichever is larger is the out-of-domain one), so the test
    checks the calculator, not how far one training run's members happen to disagree."""
    near, far = molecule("CH3OH"), stretched(molecule("CH3OH"))
    s_near, s_far = (_energy_spread_per_atom(predictor, a) for a in (near, far))
    assert s_near != s_far
    if s_far < s_near:
        near, far = far, near
    limit = 0.5 * (s_near + s_far)
    domain = Domain({"energy_ev": limit}, {"energy_ev": True}, max_atoms=6)
    calc = MolpreCalculator(predictor.model, CUTOFF, domain=domain)
    near.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        near.get_potential_energy()
    assert calc.results["energy_std"] > 0 and calc.results["ood"] is False
    assert calc.results["forces_std"].shape == (6, 3) and calc.results["energies"].shape == (3,)
    assert calc.get_property("energy_std", near) == calc.results["energy_std"]
    np.testing.assert_allclose(calc.results["energies"].mean(), calc.results["energy"], atol=1e-9)
    far.calc = calc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for step in range(3):
            far.positions[0, 0] += 1e-3 * step
            far.get_forces()
    assert calc.results["ood"] and "committee spread" in calc.results["ood_reason"]
    ood = [w for w in caught if issubclass(w.category, OutOfDomainWarning)]
    assert len(ood) == 1 and ood[0].filename == __file__


def test_the_predictors_calculator_carries_its_calibrated_domain(predictor):
    calc = predictor.calculator()
    assert calc.domain == predictor.domain and calc.domain.thresholds["energy_ev"] > 0


def test_single_models_keep_their_columns_and_calculator_results():
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small", channels=8, num_layers=1, radial_mlp_width=8),
                        {1: -13.6, 6: -1029.0, 8: -2041.0}, energy_scale=0.1)
    single = Predictor(model, CUTOFF, progress=False)
    assert single.columns == ["id", "smiles", "energy_ev", "energy_minus_atomref_ev", "status",
                              "error", "n_conformers"]
    atoms = molecule("H2O")
    atoms.calc = single.calculator()
    atoms.get_potential_energy()
    assert set(atoms.calc.results) == {"energy", "free_energy", "forces"}
    with pytest.raises(ValueError, match="at least 2"):
        Committee([model])
