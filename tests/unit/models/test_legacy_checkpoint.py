"""Checkpoints written before the dense edge convolution load and predict the same numbers.

The files in data/ were made by data/make_legacy_checkpoint.py with the older code.
"""

from pathlib import Path

import pytest
import torch
from ase.build import molecule

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.checkpoint import model_from_payload, read_checkpoint

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["lmax1", "lmax2"])
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "e3nn"])
def test_old_checkpoint_loads_and_predicts_what_it_did(name, dense):
    model = model_from_payload(read_checkpoint(DATA / f"legacy_{name}.pt"))
    for block in model.encoder.blocks:
        block.use_dense = dense
    expected = torch.load(DATA / f"legacy_{name}_out.pt", weights_only=True)
    cutoff = model.encoder.config.cutoff
    batch = collate([atoms_to_sample(molecule(n), cutoff) for n in expected["names"]])
    out = model(batch, compute_forces=True)
    assert torch.allclose(out[keys.PREDICTED_ENERGY], expected["energy"], rtol=0, atol=1e-5)
    assert torch.allclose(out[keys.PREDICTED_FORCES], expected["forces"], rtol=0, atol=1e-6)
    assert torch.allclose(out[keys.NODE_FEATURES], expected["features"], rtol=0, atol=1e-6)
    assert expected["forces"].abs().max() > 1e-2
