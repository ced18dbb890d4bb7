import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant
from encoder_testlib import TINY, make_batch

from molpre.data import keys
from molpre.models.encoder import Encoder, EncoderConfig, load_encoder, save_encoder
from molpre.models.presets import PRESETS, build_encoder, resolve_config


def _run(encoder, batch, pos):
    return encoder({**batch, keys.POSITIONS: pos})


def test_output_shapes(encoder, dtype):
    batch = make_batch(["H2O", "CH3CH2OH"], dtype)
    out = encoder(batch)
    n = batch[keys.ATOMIC_NUMBERS].shape[0]
    assert out[keys.NODE_FEATURES].shape == (n, encoder.feature_dim) == (n, 16)
    assert out[keys.NODE_VECTORS].shape == (n, 8, 3)
    assert out[keys.NODE_IRREPS].shape == (n, encoder.irreps_out.dim)
    assert out[keys.GRAPH_EMBEDDING].shape == (2, 16)
    assert out[keys.NODE_FEATURES].dtype == dtype
    first = out[keys.BATCH] == 0
    assert torch.allclose(out[keys.GRAPH_EMBEDDING][0], out[keys.NODE_FEATURES][first].mean(0))


def test_e3nn_assert_equivariant_on_encoder_outputs(encoder, dtype):
    batch = make_batch(["CH3CH2OH"], dtype)
    c = encoder.vector_channels
    tol = 1e-7 if dtype == torch.float64 else 1e-3
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        assert_equivariant(
            lambda pos: _run(encoder, batch, pos)[keys.NODE_VECTORS].reshape(pos.shape[0], -1),
            args_in=[batch[keys.POSITIONS]], irreps_in=["cartesian_points"],
            irreps_out=[o3.Irreps(f"{c}x1o")], tolerance=tol,
        )
        assert_equivariant(
            lambda pos: _run(encoder, batch, pos)[keys.NODE_IRREPS],
            args_in=[batch[keys.POSITIONS]], irreps_in=["cartesian_points"],
            irreps_out=[encoder.irreps_out], tolerance=tol,
        )
    finally:
        torch.set_default_dtype(old)


def test_vectors_rotate_as_cartesian_vectors_and_features_are_invariant(encoder, dtype):
    batch = make_batch(["CH3CH2OH"], dtype)
    rot = o3.rand_matrix(dtype=dtype)
    pos = batch[keys.POSITIONS]
    a = _run(encoder, batch, pos)
    b = _run(encoder, batch, pos @ rot.T + 3.0)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert torch.allclose(b[keys.NODE_VECTORS], a[keys.NODE_VECTORS] @ rot.T, atol=tol)
    assert torch.allclose(b[keys.NODE_FEATURES], a[keys.NODE_FEATURES], atol=tol)
    assert a[keys.NODE_VECTORS].abs().max() > 1e-3


def test_masked_atoms_run_and_change_the_features(encoder, dtype):
    batch = make_batch(["CH3CH2OH"], dtype)
    masked = batch[keys.ATOMIC_NUMBERS].clone()
    masked[[0, 3]] = keys.MASK_TOKEN
    a = encoder(batch)[keys.NODE_FEATURES]
    b = encoder({**batch, keys.ATOMIC_NUMBERS: masked})[keys.NODE_FEATURES]
    assert torch.isfinite(b).all() and not torch.allclose(a, b)


def test_single_atom_without_edges_runs(encoder, dtype):
    batch = make_batch(["H2O"], dtype, cutoff=0.1)
    assert batch[keys.EDGE_INDEX].shape[1] == 0
    assert torch.isfinite(encoder(batch)[keys.NODE_FEATURES]).all()


def test_save_load_round_trip_gives_identical_outputs(encoder, dtype, tmp_path):
    batch = make_batch(["H2O", "NH3"], dtype)
    path = tmp_path / "enc.pt"
    save_encoder(encoder, path, meta={"step": 7})
    loaded = load_encoder(path)
    assert loaded.config == encoder.config and loaded.checkpoint_meta == {"step": 7}
    a, b = encoder(batch), loaded(batch)
    for key in (keys.NODE_FEATURES, keys.NODE_VECTORS, keys.GRAPH_EMBEDDING):
        assert torch.equal(a[key], b[key])


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "nope.pt")
    torch.save({"format": "other/9"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a molpre encoder"):
        load_encoder(tmp_path / "x.pt")


def test_blocks_are_in_order_and_config_validates():
    enc = Encoder(TINY)
    assert len(enc.blocks) == TINY.num_layers and not enc.blocks[0].residual and enc.blocks[1].residual
    with pytest.raises(ValueError):
        EncoderConfig(lmax=0)
    with pytest.raises(ValueError, match="unknown config key 'width'"):
        EncoderConfig.from_dict({"channels": 4, "width": 3})


def test_presets_build_and_overrides():
    assert set(PRESETS) == {"small", "medium"}
    small = build_encoder("small")
    assert small.config == PRESETS["small"] and small.config is not PRESETS["small"]
    assert resolve_config("medium", cutoff=4.0).cutoff == 4.0 and PRESETS["medium"].cutoff == 5.0
    assert resolve_config(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="unknown encoder preset"):
        build_encoder("huge")
