"""Radial basis functions of interatomic distance with a smooth cutoff envelope.

All functions take distances ``r: [E]`` in Angstrom and return ``[E, num_basis]`` (or ``[E]``
for the envelope). The envelope and its first derivatives vanish at the cutoff, so energies
and forces are continuous when an atom crosses it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PolynomialCutoff(nn.Module):
    """Smooth envelope ``u(r/rc)`` of DimeNet/NequIP: 1 at r=0, 0 with ``p`` smooth derivatives at rc.

    ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` for x < 1, else 0.
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r: [E]`` Angstrom -> ``[E]`` envelope in [0, 1]."""
        p = self.p
        x = r / self.cutoff
        out = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * x.pow(p)
            + p * (p + 2) * x.pow(p + 1)
            - 0.5 * p * (p + 1) * x.pow(p + 2)
        )
        return out * (x < 1.0).to(out.dtype)


class BesselBasis(nn.Module):
    """``sqrt(2/rc) sin(n pi r / rc) / r``, n = 1..num_basis, with trainable frequencies (NequIP)."""

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.prefactor = math.sqrt(2.0 / self.cutoff)
        freqs = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi
        if trainable:
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r: [E]`` Angstrom (> 0) -> ``[E, num_basis]``."""
        x = r.unsqueeze(-1) / self.cutoff
        return self.prefactor * torch.sin(self.freqs * x) / r.unsqueeze(-1)


class GaussianBasis(nn.Module):
    """Gaussians ``exp(-(r - mu_n)^2 / (2 w^2))`` with centres evenly spaced on [0, rc]."""

    def __init__(self, cutoff: float, num_basis: int = 8) -> None:
        super().__init__()
        centres = torch.linspace(0.0, float(cutoff), num_basis)
        self.register_buffer("centres", centres)
        self.width = float(cutoff) / max(num_basis - 1, 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r: [E]`` Angstrom -> ``[E, num_basis]``."""
        diff = r.unsqueeze(-1) - self.centres
        return torch.exp(-0.5 * (diff / self.width) ** 2)


RADIAL_BASES = {"bessel": BesselBasis, "gaussian": GaussianBasis}


class RadialEmbedding(nn.Module):
    """Basis times envelope: ``[E] -> [E, num_basis]``, exactly zero beyond the cutoff."""

    def __init__(self, cutoff: float, num_basis: int = 8, basis: str = "bessel", p: int = 6) -> None:
        super().__init__()
        if basis not in RADIAL_BASES:
            raise ValueError(f"unknown radial basis {basis!r}; choose from {sorted(RADIAL_BASES)}")
        self.basis = RADIAL_BASES[basis](cutoff, num_basis)
        self.envelope = PolynomialCutoff(cutoff, p)
        self.num_basis = int(num_basis)

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(basis * envelope [E, num_basis], envelope [E])``."""
        env = self.envelope(r)
        return self.basis(r) * env.unsqueeze(-1), env
