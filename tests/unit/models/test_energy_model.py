import json

import numpy as np
import pytest
import torch
from ase.build import molecule
from e3nn import o3
from encoder_testlib import ATOMREF, TINY, make_batch

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel


def _tol(dtype):
    return 1e-4 if dtype == torch.float32 else 1e-9


def test_outputs_shapes_units_and_atomref(energy_model, dtype):
    batch = make_batch(["H2O", "CH4"], dtype)
    out = energy_model(batch, compute_forces=True)
    assert out[keys.PREDICTED_ENERGY].shape == (2,) and out[keys.PREDICTED_ENERGY].dtype == torch.float64
    assert out[keys.PREDICTED_FORCES].shape == (8, 3) and out[keys.PREDICTED_FORCES].dtype == dtype
    learned = out[keys.ATOMIC_ENERGY][out[keys.BATCH] == 0].sum().double()
    expected = ATOMREF[8] + 2 * ATOMREF[1] + learned
    assert out[keys.PREDICTED_ENERGY][0].item() == pytest.approx(expected.item(), abs=1e-3)


def test_energy_invariant_under_rotation_translation_permutation(energy_model, dtype):
    batch = make_batch(["CH3CH2OH"], dtype)
    e0 = energy_model(batch)[keys.PREDICTED_ENERGY]
    rot = o3.rand_matrix(dtype=dtype)
    moved = {**batch, keys.POSITIONS: batch[keys.POSITIONS] @ rot.T + torch.tensor([5.0, -2.0, 1.0], dtype=dtype)}
    assert torch.allclose(energy_model(moved)[keys.PREDICTED_ENERGY], e0, atol=_tol(dtype), rtol=0)
    atoms = molecule("CH3CH2OH")
    perm = np.random.default_rng(0).permutation(len(atoms))
    permuted = collate([atoms_to_sample(atoms[perm], TINY.cutoff)])
    permuted[keys.POSITIONS] = permuted[keys.POSITIONS].to(dtype)
    assert torch.allclose(energy_model(permuted)[keys.PREDICTED_ENERGY], e0, atol=_tol(dtype), rtol=0)


def test_forces_rotate_with_the_molecule(energy_model, dtype):
    batch = make_batch(["CH3CH2OH"], dtype)
    rot = o3.rand_matrix(dtype=dtype)
    f0 = energy_model(batch, compute_forces=True)[keys.PREDICTED_FORCES]
    moved = {**batch, keys.POSITIONS: batch[keys.POSITIONS] @ rot.T}
    f1 = energy_model(moved, compute_forces=True)[keys.PREDICTED_FORCES]
    assert torch.allclose(f1, f0 @ rot.T, atol=_tol(dtype))
    assert torch.allclose(f0.sum(0), torch.zeros(3, dtype=dtype), atol=10 * _tol(dtype))


def test_forces_equal_minus_numerical_gradient_float64():
    torch.manual_seed(1)
    model = EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5).double()
    batch = make_batch(["CH3CH2OH"], torch.float64)
    forces = model(batch, compute_forces=True)[keys.PREDICTED_FORCES]
    pos, h = batch[keys.POSITIONS], 1e-5
    numeric = torch.zeros_like(pos)
    for i in range(pos.shape[0]):
        for d in range(3):
            plus, minus = pos.clone(), pos.clone()
            plus[i, d] += h
            minus[i, d] -= h
            e_p = model({**batch, keys.POSITIONS: plus})[keys.PREDICTED_ENERGY]
            e_m = model({**batch, keys.POSITIONS: minus})[keys.PREDICTED_ENERGY]
            numeric[i, d] = -(e_p - e_m).item() / (2 * h)
    assert torch.allclose(forces, numeric, atol=1e-6)
    assert forces.abs().max() > 1e-3


def test_forces_pass_gradcheck_float64():
    torch.manual_seed(2)
    model = EnergyModel(Encoder(TINY), ATOMREF).double()
    batch = make_batch(["H2O"], torch.float64)

    def forces(pos):
        return model({**batch, keys.POSITIONS: pos}, compute_forces=True)[keys.PREDICTED_FORCES]

    pos = batch[keys.POSITIONS].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(forces, (pos,), atol=1e-6)


def test_batch_equals_one_at_a_time(energy_model, dtype):
    names = ["H2O", "CH3CH2OH", "NH3", "CH4"]
    out = energy_model(make_batch(names, dtype), compute_forces=True)
    start = 0
    for k, name in enumerate(names):
        single = energy_model(make_batch([name], dtype), compute_forces=True)
        n = single[keys.PREDICTED_FORCES].shape[0]
        assert out[keys.PREDICTED_ENERGY][k].item() == pytest.approx(
            single[keys.PREDICTED_ENERGY].item(), abs=_tol(dtype) * 10)
        assert torch.allclose(out[keys.PREDICTED_FORCES][start:start + n],
                              single[keys.PREDICTED_FORCES], atol=_tol(dtype))
        start += n


def test_two_molecules_100_angstrom_apart_give_the_sum(energy_model, dtype):
    a, b = molecule("H2O"), molecule("CH3CH2OH")
    b.translate([100.0, 0.0, 0.0])
    both = collate([atoms_to_sample(a + b, TINY.cutoff)])
    both[keys.POSITIONS] = both[keys.POSITIONS].to(dtype)
    e_both = energy_model(both)[keys.PREDICTED_ENERGY].item()
    e_a = energy_model(make_batch(["H2O"], dtype))[keys.PREDICTED_ENERGY].item()
    sep = collate([atoms_to_sample(b, TINY.cutoff)])
    sep[keys.POSITIONS] = sep[keys.POSITIONS].to(dtype)
    e_b = energy_model(sep)[keys.PREDICTED_ENERGY].item()
    assert e_both == pytest.approx(e_a + e_b, abs=_tol(dtype) * 10)


def test_training_forces_keep_graph_for_force_loss(energy_model, dtype):
    batch = make_batch(["H2O", "NH3"], dtype)
    out = energy_model(batch, compute_forces=True)
    loss = out[keys.PREDICTED_ENERGY].pow(2).mean() + out[keys.PREDICTED_FORCES].pow(2).mean()
    params = list(energy_model.encoder.blocks[0].radial.parameters())
    grads = torch.autograd.grad(loss, params)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        out = energy_model(batch, compute_forces=True)
    assert not out[keys.PREDICTED_FORCES].requires_grad


def test_config_round_trip_through_json_and_state_dict(energy_model, dtype):
    config = json.loads(json.dumps(energy_model.config))
    rebuilt = EnergyModel.from_config(config).to(dtype)
    rebuilt.load_state_dict(energy_model.state_dict())
    batch = make_batch(["CH4"], dtype)
    assert torch.equal(rebuilt(batch)[keys.PREDICTED_ENERGY], energy_model(batch)[keys.PREDICTED_ENERGY])
    assert rebuilt.atomref.as_dict() == ATOMREF


def test_atomref_stays_float64_and_reports_missing_elements():
    from molpre.models.atomref import Atomref

    atomref = Atomref(ATOMREF).float()
    assert atomref.energies.dtype == torch.float64
    assert atomref.missing(torch.tensor([0, 1, 6, 9, 17, 9])) == [9, 17]
