"""DenseEdgeConv: the same numbers, derivatives and equivariance as e3nn's TensorProduct."""

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from molpre.nn import InteractionBlock, natural_irreps
from molpre.nn.edge_conv import DenseEdgeConv, coupling_tensor
from molpre.nn.interaction import convolution_paths

CASES = [  # (irreps_in, sh lmax, hidden lmax): a first block, small's second, medium's second
    ("4x0e", 1, 1), ("4x0e+4x1o", 1, 1), ("3x0e+3x1o+3x2e", 2, 2), ("3x0e", 2, 2),
]


def _tp(irreps_in, sh_lmax, lmax):
    irreps_in = o3.Irreps(irreps_in)
    sh = o3.Irreps.spherical_harmonics(sh_lmax)
    mid, instructions = convolution_paths(irreps_in, sh, natural_irreps(irreps_in[0].mul, lmax))
    return o3.TensorProduct(irreps_in, sh, mid, instructions, shared_weights=False,
                            internal_weights=False)


def _inputs(tp, dtype, n=6, e=15):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, tp.irreps_in1.dim, generator=gen, dtype=dtype)
    vec = torch.randn(e, 3, generator=gen, dtype=dtype)
    sh = o3.spherical_harmonics(tp.irreps_in2, vec, normalize=True)
    w = torch.randn(e, tp.weight_numel, generator=gen, dtype=dtype)
    sender = torch.randint(0, n, (e,), generator=gen)
    return x, sh, w, sender


def _dense_in_e3nn_layout(dense, x, sh, w, sender):
    return dense.to_irreps(dense(dense.to_components(x)[sender], sh, w))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)],
                         ids=["f64", "f32"])
def test_dense_conv_equals_e3nn_with_first_and_second_derivatives(case, dtype, tol):
    tp = _tp(*case).to(dtype)
    dense = DenseEdgeConv(tp).to(dtype)
    x, sh, w, sender = _inputs(tp, dtype)
    results = []
    for fn in (lambda *a: tp(a[0][sender], a[1], a[2]),
               lambda *a: _dense_in_e3nn_layout(dense, *a, sender)):
        args = [t.clone().requires_grad_(True) for t in (x, sh, w)]
        out = fn(*args)
        grads = torch.autograd.grad(out.pow(2).sum(), args, create_graph=True)
        second = torch.autograd.grad(sum(g.pow(2).sum() for g in grads), args)
        results.append([out, *grads, *second])
    scale = max(r.abs().max().item() for r in results[0])
    for ref, got in zip(*results, strict=True):
        assert torch.allclose(got, ref, atol=tol * scale, rtol=0)
    assert results[0][0].abs().max() > 0.1


@pytest.mark.parametrize("case", CASES)
def test_dense_conv_is_equivariant(case):
    torch.set_default_dtype(torch.float64)
    try:
        tp = _tp(*case)
        dense = DenseEdgeConv(tp)
        x, _, w, sender = _inputs(tp, torch.float64)
        assert_equivariant(lambda h, y: _dense_in_e3nn_layout(dense, h, y, w, sender),
                           args_in=[x, o3.spherical_harmonics(tp.irreps_in2, torch.randn(15, 3), True)],
                           irreps_in=[tp.irreps_in1, tp.irreps_in2], irreps_out=[tp.irreps_out],
                           tolerance=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)


def test_coupling_tensor_is_sparse_clebsch_gordan_with_one_path_per_output():
    tp = _tp("2x0e+2x1o", 1, 1)
    coupling, path_of = coupling_tensor(tp)
    assert coupling.shape == (4, 4, 8) and path_of.tolist() == [0, 3, 1, 1, 1, 2, 2, 2]
    # 0e x 0e -> 0e is the only coupling of scalar input and scalar harmonic (path weight 1)
    assert coupling[0, 0].tolist() == [1.0] + [0.0] * 7


def test_dense_conv_refuses_mixed_multiplicities_and_other_modes():
    irreps = o3.Irreps("2x0e+3x1o")
    tp = o3.TensorProduct(irreps, "0e", irreps, [(0, 0, 0, "uvu", True), (1, 0, 1, "uvu", True)],
                          shared_weights=False, internal_weights=False)
    with pytest.raises(ValueError, match="one multiplicity"):
        DenseEdgeConv(tp)
    tp = o3.FullyConnectedTensorProduct("2x0e", "2x0e", "2x0e")
    with pytest.raises(ValueError, match="uvu"):
        DenseEdgeConv(tp)


@pytest.mark.parametrize("lmax", [1, 2])
def test_block_gives_the_same_outputs_and_forces_with_either_kernel(lmax):
    torch.manual_seed(0)
    sh_irreps = o3.Irreps.spherical_harmonics(lmax)
    irreps = natural_irreps(4, lmax)
    block = InteractionBlock(irreps, irreps, sh_irreps, 3, num_basis=4, radial_width=8,
                             avg_num_neighbors=3.0).double()
    n, e = 7, 20
    h = irreps.randn(n, -1, dtype=torch.float64)
    attr = torch.randn(n, 3, dtype=torch.float64)
    vec = torch.randn(e, 3, dtype=torch.float64, requires_grad=True)
    edge_index = torch.randint(0, n, (2, e))
    outs = []
    for dense in (True, False):
        block.use_dense = dense
        sh = o3.spherical_harmonics(sh_irreps, vec, normalize=True)
        out = block(h, attr, sh, vec.norm(dim=-1, keepdim=True).expand(-1, 4), edge_index)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), vec)
        outs.append((out, grad))
    block.use_dense = True
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-12)
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-10)
