"""ZBL short-range pair repulsion, smoothly switched off below bonding distances.

``E = sum_{i<j} k Z_i Z_j / r_ij * phi(r_ij / a_ij) * s(r_ij)`` (eV), with ``k = e^2/(4 pi eps0)
= Hartree * Bohr`` (14.40 eV*Angstrom, from ase.units), the universal ZBL screening function
``phi`` and screening length ``a_ij = 0.8854 a0 / (Z_i^0.23 + Z_j^0.23)`` (Ziegler, Biersack,
Littmark 1985). ``s`` is a C2 smoothstep from 1 at ``r_in = inner * (R_i + R_j)`` to 0 at
``r_out = outer * (R_i + R_j)`` (``R``: ASE's covalent radii, Angstrom); with the defaults
(0.5, 0.75) ``r_out`` lies below the bond length of every bond between H, C, N, O, F, S, Cl
(H-H: 0.47 vs 0.74 Angstrom; C-H: 0.80 vs 1.09; N#N: 1.07 vs 1.10), so the term is exactly
zero at bonding and equilibrium geometries. It has no trainable parameter: every factor is
positive, so no training can turn it off or make it attractive.
"""

from __future__ import annotations

from typing import Any

import torch
from ase.data import covalent_radii
from ase.units import Bohr, Hartree
from torch import nn

from molpre.data import keys

#: e^2 / (4 pi eps0) in eV*Angstrom.
COULOMB_EV_ANGSTROM = Hartree * Bohr
#: ZBL universal screening length prefactor, Angstrom (0.8854 Bohr).
ZBL_LENGTH = 0.8854 * Bohr
ZBL_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)


def zbl_screening(x: torch.Tensor) -> torch.Tensor:
    """The universal ZBL screening function phi(x), ``x = r / a`` (dimensionless), same shape."""
    return sum(c * torch.exp(-e * x) for c, e in zip(ZBL_COEFFICIENTS, ZBL_EXPONENTS, strict=True))


def smoothstep_off(r: torch.Tensor, r_in: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
    """1 below ``r_in``, 0 above ``r_out``, ``1 - 10t^3 + 15t^4 - 6t^5`` between (C2)."""
    t = ((r - r_in) / (r_out - r_in)).clamp(0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2)


class ZBLRepulsion(nn.Module):
    """Pair repulsion energy per molecule ``[B]`` (eV) over the edges of a batch.

    ``inner``/``outer``: switch start and end as fractions of the covalent radius sum.
    Uses EDGE_INDEX (both directions of each pair, halved) with distances recomputed from
    the positions, so forces follow by autograd; needs the graph cutoff >= the largest
    ``r_out`` (1.5 Angstrom for Cl-Cl, always true for molpre encoders).
    """

    def __init__(self, inner: float = 0.5, outer: float = 0.75) -> None:
        super().__init__()
        if not 0 < inner < outer:
            raise ValueError(f"repulsion switch: need 0 < inner < outer, got {inner}, {outer}")
        self.inner, self.outer = float(inner), float(outer)
        self.register_buffer("radii", torch.as_tensor(covalent_radii, dtype=torch.float64),
                             persistent=False)

    def config(self) -> dict[str, Any]:
        return {"kind": "zbl", "inner": self.inner, "outer": self.outer}

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ZBLRepulsion | None:
        if not config:
            return None
        if config.get("kind", "zbl") != "zbl":
            raise ValueError(f"unknown repulsion kind {config.get('kind')!r}: expected 'zbl'")
        return cls(float(config.get("inner", 0.5)), float(config.get("outer", 0.75)))

    def pair_energy(self, z_i: torch.Tensor, z_j: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Switched ZBL energy ``[E]`` (eV) of pairs with atomic numbers ``z_i, z_j`` ``[E]``
        at distances ``r`` ``[E]`` (Angstrom)."""
        zi, zj = z_i.to(r.dtype), z_j.to(r.dtype)
        a = ZBL_LENGTH / (zi**0.23 + zj**0.23)
        radius_sum = (self.radii[z_i] + self.radii[z_j]).to(r.dtype)
        switch = smoothstep_off(r, self.inner * radius_sum, self.outer * radius_sum)
        safe_r = r.clamp(min=1e-6)
        energy = COULOMB_EV_ANGSTROM * zi * zj / safe_r * zbl_screening(safe_r / a)
        return torch.where(switch > 0, energy * switch, torch.zeros_like(r))

    def forward(self, batch: dict[str, torch.Tensor], pos: torch.Tensor, index: torch.Tensor,
                num_graphs: int) -> torch.Tensor:
        """``[B]`` repulsion energies (eV, dtype of ``pos``); ``pos`` ``[N, 3]`` Angstrom."""
        z = batch[keys.ATOMIC_NUMBERS]
        sender, receiver = self.close_pairs(batch[keys.EDGE_INDEX], z, pos)
        r = (pos[sender] - pos[receiver]).norm(dim=-1)
        pair = 0.5 * self.pair_energy(z[sender], z[receiver], r)
        out = torch.zeros(num_graphs, dtype=pos.dtype, device=pos.device)
        return out.index_add(0, index[receiver], pair)

    @torch.no_grad()
    def close_pairs(self, edge_index: torch.Tensor, z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The edges ``[2, E']`` closer than the switch's end, the only ones with energy
        (at bonding geometries none: the sum then costs nothing, forces included)."""
        sender, receiver = edge_index
        r = (pos[sender] - pos[receiver]).norm(dim=-1)
        r_out = self.outer * (self.radii[z[sender]] + self.radii[z[receiver]])
        return edge_index[:, r < r_out.to(r.dtype)]
