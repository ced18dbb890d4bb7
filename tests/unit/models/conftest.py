"""Fixtures for the model tests: tiny encoders and energy models in float32 and float64.

Module-scoped (building e3nn modules is slow); tests must not modify them in place.
"""

from __future__ import annotations

import pytest
import torch
from encoder_testlib import ATOMREF, TINY

from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel


@pytest.fixture(scope="module", params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(scope="module")
def encoder(dtype):
    torch.manual_seed(0)
    return Encoder(TINY).to(dtype)


@pytest.fixture(scope="module")
def energy_model(dtype):
    torch.manual_seed(0)
    return EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5).to(dtype)
