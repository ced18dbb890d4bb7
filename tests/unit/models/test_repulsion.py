"""The ZBL short-range repulsion: dominant at 0.3 Angstrom, zero beyond its switch, smooth,
part of the energy model's energy and forces, saved with the model config."""

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.data import covalent_radii
from encoder_testlib import TINY

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel, PropertyModel
from molpre.nn.repulsion import ZBLRepulsion

ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9, "S": 16, "Cl": 17}
PAIRS = list(itertools.combinations_with_replacement(ELEMENTS.values(), 2))
ATOMREF = {z: -10.0 * z for z in ELEMENTS.values()}


def _dimer(z1: int, z2: int, r: float, dtype=torch.float64) -> dict:
    batch = collate([atoms_to_sample(Atoms(numbers=[z1, z2], positions=[[0, 0, 0], [0, 0, r]]),
                                     TINY.cutoff)])
    batch[keys.POSITIONS] = torch.tensor([[0, 0, 0], [0, 0, r]], dtype=dtype)  # exact, not via float32
    return batch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5).double()


def _energy_forces(model, z1, z2, r):
    out = model(_dimer(z1, z2, r), compute_forces=True)
    learned = float(out[keys.PREDICTED_ENERGY][0].detach()) - ATOMREF[z1] - ATOMREF[z2]
    return learned, out[keys.PREDICTED_FORCES].detach()


@pytest.mark.parametrize(("z1", "z2"), PAIRS)
def test_repulsion_dominates_at_0_3_angstrom(model, z1, z2):
    energy, forces = _energy_forces(model, z1, z2, 0.3)
    assert energy > 10.0, f"Z={z1},{z2}: {energy:.2f} eV at 0.3 Angstrom"
    # atom 1 sits at +z: it is pushed to +z, atom 0 to -z, with a large force
    assert forces[1, 2] > 20.0 and forces[0, 2] < -20.0
    without = PropertyModel(model.encoder, dict(model.heads), repulsion=False)
    bare, _ = _energy_forces(without, z1, z2, 0.3)
    assert energy - bare > 10.0 and energy - bare > 10 * abs(bare)


@pytest.mark.parametrize(("z1", "z2"), PAIRS)
def test_repulsion_vanishes_beyond_switch(z1, z2):
    term = ZBLRepulsion()
    r_out = 0.75 * (covalent_radii[z1] + covalent_radii[z2])
    r = torch.tensor([r_out, r_out + 0.01, 1.2 * r_out, 3.0], dtype=torch.float64)
    energy = term.pair_energy(torch.tensor([z1] * 4), torch.tensor([z2] * 4), r)
    assert torch.all(energy == 0)
    inside = term.pair_energy(torch.tensor([z1]), torch.tensor([z2]),
                              torch.tensor([0.9 * r_out], dtype=torch.float64))
    assert float(inside) > 0


def test_repulsion_is_zero_on_equilibrium_molecules(model):
    without = PropertyModel(model.encoder, dict(model.heads), repulsion=False)
    batch = collate([atoms_to_sample(molecule(n), TINY.cutoff) for n in ("H2O", "CH4", "N2", "CO")])
    batch[keys.POSITIONS] = batch[keys.POSITIONS].double()
    assert torch.equal(model(batch)[keys.PREDICTED_ENERGY], without(batch)[keys.PREDICTED_ENERGY])


def test_repulsion_positive_and_decreasing():
    term = ZBLRepulsion()
    r = torch.linspace(0.05, 1.5, 300, dtype=torch.float64)
    for z1, z2 in PAIRS:
        e = term.pair_energy(torch.full_like(r, z1, dtype=torch.long),
                             torch.full_like(r, z2, dtype=torch.long), r)
        assert torch.all(e >= 0) and torch.all(e[1:] <= e[:-1])


def test_forces_match_finite_differences_through_the_switch(model):
    """Model forces (repulsion included) equal -dE/dx across the switching region (smooth)."""
    for z1, z2 in [(1, 1), (6, 8), (17, 16)]:
        radius_sum = covalent_radii[z1] + covalent_radii[z2]
        for r in np.linspace(0.45, 0.8, 6) * radius_sum:
            _, forces = _energy_forces(model, z1, z2, float(r))
            h = 1e-5
            numeric = -(_energy_forces(model, z1, z2, float(r) + h)[0]
                        - _energy_forces(model, z1, z2, float(r) - h)[0]) / (2 * h)
            assert float(forces[1, 2]) == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_second_derivative_continuous_at_switch_ends():
    """The switched pair energy is C2: the force (first derivative) has no jump at r_in, r_out."""
    term = ZBLRepulsion()
    z = torch.tensor([6]), torch.tensor([6])
    radius_sum = 2 * covalent_radii[6]

    def force(r):
        x = torch.tensor([r], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(term.pair_energy(*z, x).sum(), x)
        return float(g)

    for edge in (0.5 * radius_sum, 0.75 * radius_sum):
        assert force(edge - 1e-9) == pytest.approx(force(edge + 1e-9), abs=1e-5)


def test_repulsion_saved_in_config_and_old_configs_load_with_it_on(model):
    config = model.config
    assert config["repulsion"] == {"kind": "zbl", "inner": 0.5, "outer": 0.75}
    assert PropertyModel.from_config(config).repulsion is not None
    off = PropertyModel(model.encoder, dict(model.heads), repulsion=False)
    assert PropertyModel.from_config(off.config).repulsion is None
    legacy = {k: v for k, v in config.items() if k != "repulsion"}
    assert PropertyModel.from_config(legacy).repulsion is not None
    # no parameters: state dicts are unchanged, old ones load strictly
    assert not list(model.repulsion.parameters())
    assert set(model.state_dict()) == set(off.state_dict())
