import pytest
import torch

from molpre.nn.radial import BesselBasis, GaussianBasis, PolynomialCutoff, RadialEmbedding


def test_polynomial_cutoff_is_one_at_zero_and_smoothly_zero_at_cutoff():
    env = PolynomialCutoff(cutoff=5.0, p=6).double()
    r = torch.tensor([1e-9, 2.5, 5.0 - 1e-6, 5.0, 6.0], dtype=torch.float64, requires_grad=True)
    u = env(r)
    assert u[0].item() == pytest.approx(1.0)
    assert 0.0 < u[1].item() < 1.0
    assert u[2].abs().item() < 1e-9 and u[3].item() == 0.0 and u[4].item() == 0.0
    (grad,) = torch.autograd.grad(u.sum(), r)
    assert grad[2].abs().item() < 1e-6 and grad[4].item() == 0.0


@pytest.mark.parametrize("basis", ["bessel", "gaussian"])
def test_radial_embedding_shape_and_zero_beyond_cutoff(basis):
    emb = RadialEmbedding(cutoff=4.0, num_basis=6, basis=basis)
    r = torch.tensor([0.9, 1.5, 3.9, 4.0, 7.0])
    out, env = emb(r)
    assert out.shape == (5, 6) and env.shape == (5,)
    assert torch.all(out[3:] == 0.0)
    assert out[:3].abs().sum(dim=1).min() > 0


def test_bessel_basis_matches_formula():
    basis = BesselBasis(cutoff=5.0, num_basis=3, trainable=False).double()
    r = torch.tensor([1.3], dtype=torch.float64)
    n = torch.arange(1, 4, dtype=torch.float64)
    expected = (2 / 5.0) ** 0.5 * torch.sin(n * torch.pi * 1.3 / 5.0) / 1.3
    assert torch.allclose(basis(r)[0], expected)


def test_gaussian_basis_peaks_at_centres():
    basis = GaussianBasis(cutoff=4.0, num_basis=5)
    out = basis(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(out.argmax(dim=1), torch.arange(5))


def test_unknown_basis_is_rejected():
    with pytest.raises(ValueError, match="unknown radial basis"):
        RadialEmbedding(cutoff=4.0, basis="chebyshev")
