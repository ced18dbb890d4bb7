"""Checkpoints written by molpre before head kinds became classes load and predict as they
did: tests/data/legacy holds a four-head model and a committee written at 52ca04c with the
predictions that code gave (see its README)."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from molpre.data.graph import atoms_to_sample, collate
from molpre.inference.batch import predict_targets
from molpre.models.checkpoint import load_checkpoint

LEGACY = Path(__file__).resolve().parents[2] / "data" / "legacy"


@pytest.mark.parametrize("name", ["property", "committee"])
def test_a_checkpoint_of_the_string_kinds_predicts_what_it_did(name):
    expected = json.loads((LEGACY / "predictions.json").read_text())[name]
    model, _ = load_checkpoint(LEGACY / f"{name}.ckpt")
    assert model.targets == ["energy", "gap", "dipole", "alpha"]
    samples = [atoms_to_sample(a, model.encoder.config.cutoff)
               for a in read(LEGACY / "molecules.extxyz", ":")]
    got = predict_targets(model, samples)
    # float32 models: the dense edge product (molpre.nn.edge_conv) sums in another order than
    # e3nn's kernel, so values move by rounding (measured: energy <= 7.5e-9 eV, dipole <=
    # 2.2e-7 D, forces <= 1.5e-7 eV/A); a change of the model would move them by far more
    for target in model.targets:
        np.testing.assert_allclose(got[target], expected[target], rtol=1e-9, atol=1e-6)
    forces = model(collate(samples), compute_forces=True)["predicted_forces"]
    np.testing.assert_allclose(forces.detach().double().numpy(), expected["forces"],
                               rtol=1e-6, atol=1e-6)
