"""Objectives' math and the equivariance of the denoising head."""

from __future__ import annotations

import pytest
import torch
from ase.build import molecule
from e3nn.util.test import assert_equivariant

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.presets import build_encoder
from molpre.models.pretrain_heads import DenoiseHead
from molpre.train import objectives as obj


def test_mask_atoms_masks_a_fraction_and_at_least_one():
    z = torch.full((2000,), 6)
    masked, mask = obj.mask_atoms(z, 0.15, torch.Generator().manual_seed(0))
    assert 0.12 < mask.float().mean() < 0.18
    assert (masked[mask] == keys.MASK_TOKEN).all() and (masked[~mask] == 6).all()
    _, tiny = obj.mask_atoms(torch.tensor([1, 8]), 0.0)
    assert tiny.sum() == 1


def configured(**sections) -> list[obj.Objective]:
    dims = obj.EncoderDims(features=8, channels=4)
    return [obj.build_objective(name, section, dims) for name, section in sections.items()]


def test_corrupt_records_the_noise_it_added():
    batch = collate([atoms_to_sample(molecule("CH3CH2OH"), 4.5)])
    objectives = configured(mask={"coord_noise": 0.05}, contrast={}, denoise={"sigma": 0.1})
    out = obj.corrupt(batch, objectives, torch.Generator().manual_seed(1))
    assert torch.allclose(out[keys.POSITIONS] - batch[keys.POSITIONS], out[keys.NOISE])
    assert 0.05 < out[keys.NOISE].std() < 0.2
    assert (out[keys.MASKED_TARGET] == batch[keys.ATOMIC_NUMBERS]).all()
    assert out[keys.MASK].any()
    assert (out[keys.ATOMIC_NUMBERS][out[keys.MASK]] == keys.MASK_TOKEN).all()


def test_without_objectives_that_move_atoms_positions_stay_and_noise_is_zero():
    batch = collate([atoms_to_sample(molecule("CH3CH2OH"), 4.5)])
    out = obj.corrupt(batch, configured(contrast={}), torch.Generator().manual_seed(1))
    assert torch.equal(out[keys.POSITIONS], batch[keys.POSITIONS])
    assert not out[keys.NOISE].any() and keys.MASK not in out


def test_objective_sections_are_checked_and_name_the_key():
    with pytest.raises(ValueError, match="objectives.mask.fraktion"):
        obj.parse_options("mask", {"fraktion": 0.2})
    with pytest.raises(ValueError, match="objectives.denoise.sigma"):
        obj.parse_options("denoise", {"sigma": "wide"})
    with pytest.raises(ValueError, match="unknown objective 'nope'"):
        obj.parse_options("nope", {})
    weight, options = obj.parse_options("contrast", {"weight": 2, "temperature": "0.5"})
    assert weight == 2.0 and options.temperature == 0.5 and options.proj_dim == 64
    assert obj.views_needed({"mask": {}, "contrast": {"weight": 0}}) == 1
    assert obj.views_needed({"mask": {}, "contrast": {}}) == 2


def test_nt_xent_prefers_matched_pairs():
    torch.manual_seed(0)
    z1 = torch.randn(16, 8)
    matched = obj.nt_xent(z1, z1 + 0.01 * torch.randn(16, 8), temperature=0.1)
    shuffled = obj.nt_xent(z1, torch.randn(16, 8), temperature=0.1)
    assert matched < 0.1 < shuffled
    pos, neg = obj.pair_similarity(z1, z1)
    assert abs(pos - 1) < 1e-5 and neg < 0.5


def test_denoising_prediction_rotates_with_the_input():
    torch.manual_seed(0)
    encoder = build_encoder("small").double()
    head = DenoiseHead(encoder.feature_dim, encoder.vector_channels).double()
    sample = atoms_to_sample(molecule("CH3CH2OH"), 4.5)

    def predict(pos: torch.Tensor) -> torch.Tensor:
        out = encoder({**sample, keys.POSITIONS: pos})
        return head(out[keys.NODE_FEATURES], out[keys.NODE_VECTORS])  # [N, 3] Cartesian

    # positions rotate and translate; the predicted noise (a displacement) only rotates.
    # e3nn's 1o D_from_matrix(R) is R itself in Cartesian order, as NODE_VECTORS are.
    assert_equivariant(predict, args_in=[sample[keys.POSITIONS].double()],
                       irreps_in=["cartesian_points"], irreps_out=["1o"], tolerance=1e-5)


def test_denoise_loss_is_in_units_of_sigma():
    noise = torch.full((5, 3), 0.1)
    assert torch.isclose(obj.denoise_loss(torch.zeros(5, 3), noise, sigma=0.1), torch.tensor(1.0))
