"""Fixtures shared by the unit tests of the Predictor."""

import pytest
import torch

#: Per-element reference energies (eV) of the untrained test model: H, C, N, O only.
ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


@pytest.fixture(scope="module")
def predictor():
    """A Predictor over an untrained small model (seeded), 2 conformers, no progress bar."""
    from molpre.inference.predictor import Predictor
    from molpre.models.energy import EnergyModel
    from molpre.models.presets import build_encoder

    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), ATOMREF, energy_scale=0.1)
    return Predictor(model, model.encoder.config.cutoff, n_conformers=2, progress=False)
