import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from molpre.nn import ElementEmbedding, InteractionBlock, natural_irreps
from molpre.nn.interaction import convolution_paths, product_paths


def _block(irreps_in, irreps_out, attr_dim, product=True):
    sh = o3.Irreps.spherical_harmonics(2)
    return InteractionBlock(irreps_in, irreps_out, sh, attr_dim, num_basis=4, radial_width=8,
                            avg_num_neighbors=3.0, product=product)


def test_natural_irreps_and_paths_keep_only_natural_parity():
    assert natural_irreps(4, 2) == o3.Irreps("4x0e+4x1o+4x2e")
    mid, instructions = convolution_paths(o3.Irreps("2x0e+2x1o"), o3.Irreps.spherical_harmonics(2),
                                          natural_irreps(2, 2))
    assert all((-1) ** ir.l == ir.p for _, ir in mid)
    assert len(instructions) == len(mid)
    irreps, products = product_paths(natural_irreps(2, 2))
    assert all(mode == "uuu" for *_, mode, _ in products)
    assert (0, 0, 0, "uuu", True) in products and (1, 1, 2, "uuu", True) in products
    assert (1, 1, 1, "uuu", True) not in products  # 1o x 1o has no 1o part


@pytest.mark.parametrize("attr_dim,product", [(0, True), (3, True), (3, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_interaction_block_is_equivariant(attr_dim, product, dtype):
    torch.manual_seed(0)
    irreps_in, irreps_out = o3.Irreps("3x0e+3x1o+3x2e"), natural_irreps(3, 2)
    block = _block(irreps_in, irreps_out, attr_dim, product).to(dtype)
    n, e = 5, 12
    edge_index = torch.randint(0, n, (2, e))
    radial = torch.rand(e, 4, dtype=dtype)
    attr = torch.randn(n, attr_dim, dtype=dtype) if attr_dim else None
    sh_irreps = o3.Irreps.spherical_harmonics(2)

    def func(h, edge_sh):
        return block(h, attr, edge_sh, radial, edge_index)

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        h = irreps_in.randn(n, -1, dtype=dtype)
        edge_sh = o3.spherical_harmonics(sh_irreps, torch.randn(e, 3, dtype=dtype), normalize=True)
        assert_equivariant(func, args_in=[h, edge_sh], irreps_in=[irreps_in, sh_irreps],
                           irreps_out=[irreps_out], tolerance=1e-7 if dtype == torch.float64 else 1e-3)
    finally:
        torch.set_default_dtype(old)


def test_first_block_maps_scalars_to_all_irreps_without_residual():
    block = _block(o3.Irreps("4x0e"), natural_irreps(4, 2), attr_dim=2)
    assert not block.residual
    out = block(torch.randn(3, 4), torch.randn(3, 2), torch.randn(4, 9), torch.rand(4, 4),
                torch.tensor([[0, 1, 2, 0], [1, 0, 0, 2]]))
    assert out.shape == (3, natural_irreps(4, 2).dim)


def test_element_embedding_has_mask_token_and_rejects_out_of_range():
    emb = ElementEmbedding(channels=4, attr_dim=2)
    feats, attr = emb(torch.tensor([0, 1, 6, 118]))
    assert feats.shape == (4, 4) and attr.shape == (4, 2)
    assert not torch.allclose(feats[0], feats[1])
    with pytest.raises(ValueError, match="atomic numbers"):
        emb(torch.tensor([119]))
