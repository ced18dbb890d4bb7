"""NequIP-style interaction block built from e3nn primitives, with a MACE-like node product.

One block: linear mixing of node irreps -> tensor-product convolution of sender features
with the spherical harmonics of the edge vector (``uvu`` paths, weights from an MLP of the
radial basis, as in NequIP/MACE) -> sum over neighbours / sqrt(avg_num_neighbors) ->
linear -> optional channel-wise product of that neighbourhood with itself (raises the body
order, as MACE's product basis does, at node cost) -> + element-dependent self-interaction ->
gated nonlinearity (SiLU on scalars, sigmoid gates on l > 0) -> residual.
"""

from __future__ import annotations

import math

import torch
from e3nn import nn as enn
from e3nn import o3
from torch import nn

from molpre.nn.edge_conv import DenseEdgeConv
from molpre.nn.segment import gather_rows, sum_rows


def natural_irreps(channels: int, lmax: int) -> o3.Irreps:
    """``channels x (0e + 1o + 2e + ...)`` up to ``lmax``: the parities that spherical harmonics carry."""
    return o3.Irreps([(channels, (deg, (-1) ** deg)) for deg in range(lmax + 1)])


def product_paths(irreps: o3.Irreps) -> tuple[o3.Irreps, list[tuple]]:
    """Channel-wise (``uuu``) instructions of ``irreps x irreps -> irreps`` (a node-level product)."""
    instructions = []
    for i, (_, ir1) in enumerate(irreps):
        for j, (_, ir2) in enumerate(irreps):
            for k, (_, ir_out) in enumerate(irreps):
                if ir_out in ir1 * ir2 and j >= i:
                    instructions.append((i, j, k, "uuu", True))
    return irreps, instructions


def convolution_paths(
    irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps
) -> tuple[o3.Irreps, list[tuple]]:
    """``uvu`` instructions from ``irreps_in x irreps_sh`` to every irrep type in ``irreps_target``.

    Returns the (sorted) output irreps of the tensor product and its instructions.
    """
    allowed = {ir for _, ir in irreps_target}
    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_edge) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_edge:
                if ir_out in allowed:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid = o3.Irreps(mid)
    mid_sorted, perm, _ = mid.sort()
    instructions = [(i, j, perm[k], mode, w) for i, j, k, mode, w in instructions]
    return mid_sorted, instructions


class InteractionBlock(nn.Module):
    """Equivariant message passing layer ``h [N, dim(irreps_in)] -> [N, dim(irreps_out)]``.

    Args:
        irreps_in / irreps_out: node irreps before/after (scalars 0e must come first in out).
        irreps_sh: spherical-harmonic irreps of the edge directions.
        attr_dim: size of the per-element attribute (0: element-independent linear self-interaction).
        num_basis: size of the radial basis fed to the radial MLP.
        radial_width / radial_layers: hidden width and depth of the radial MLP.
        avg_num_neighbors: neighbour sums are divided by its square root.
        product: add a channel-wise tensor product of the aggregated neighbourhood with itself
            (a node-level, MACE-like body-order increase; cheap since it runs on nodes, not edges).
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        attr_dim: int,
        num_basis: int,
        radial_width: int = 64,
        radial_layers: int = 2,
        avg_num_neighbors: float = 12.0,
        product: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.norm = 1.0 / math.sqrt(float(avg_num_neighbors))
        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        irreps_mid, instructions = convolution_paths(self.irreps_in, irreps_sh, self.irreps_out)
        self.conv = o3.TensorProduct(
            self.irreps_in, irreps_sh, irreps_mid, instructions,
            shared_weights=False, internal_weights=False,
        )
        # the same product as self.conv (which keeps the definition and the state-dict keys)
        self.dense_conv = DenseEdgeConv(self.conv)
        self.use_dense = True
        self.radial = enn.FullyConnectedNet(
            [num_basis] + [radial_width] * radial_layers + [self.conv.weight_numel],
            torch.nn.functional.silu,
        )
        self.gate = self._make_gate(self.irreps_out)
        if product:
            self.linear_down = o3.Linear(irreps_mid, self.irreps_out)
            self.product = o3.TensorProduct(self.irreps_out, self.irreps_out, *product_paths(self.irreps_out))
            self.linear_gate = o3.Linear(self.irreps_out, self.gate.irreps_in)
        else:
            self.linear_down = o3.Linear(irreps_mid, self.gate.irreps_in)
            self.product = self.linear_gate = None
        if attr_dim > 0:
            self.self_interaction = o3.FullyConnectedTensorProduct(
                self.irreps_in, o3.Irreps(f"{attr_dim}x0e"), self.gate.irreps_in
            )
        else:
            self.self_interaction = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.residual = self.irreps_in == self.irreps_out

    def convolve(self, x: torch.Tensor, edge_sh: torch.Tensor, weight: torch.Tensor,
                 edge_index: torch.Tensor) -> torch.Tensor:
        """Sum over neighbours of the edge tensor product: ``[N, dim(irreps_mid)]``.

        ``use_dense`` (default) runs :class:`DenseEdgeConv` (gather component-major features,
        3 ops per edge, scatter, back to e3nn layout on nodes); otherwise e3nn's module.
        Both give the same numbers (to float rounding).
        """
        sender, receiver = edge_index[0], edge_index[1]
        n = x.shape[0]
        if self.use_dense:
            dense = self.dense_conv
            messages = dense(gather_rows(dense.to_components(x), sender), edge_sh, weight)  # [E, P, U]
            return dense.to_irreps(sum_rows(messages, receiver, n))
        return sum_rows(self.conv(gather_rows(x, sender), edge_sh, weight), receiver, n)

    def edge_weights(self, edge_radial: torch.Tensor, paired: bool = False) -> torch.Tensor:
        """Path weights ``[E, weight_numel]`` from the radial MLP. ``paired``: ``edge_radial``
        has one row a pair (``[E / 2, num_basis]``); the MLP runs once a pair and each row is
        repeated for both directions (a view; its adjoint sums the two)."""
        weight = self.radial(edge_radial)
        if not paired:
            return weight
        return weight.unsqueeze(1).expand(-1, 2, -1).reshape(-1, weight.shape[-1])

    @staticmethod
    def _make_gate(irreps_out: o3.Irreps) -> enn.Gate:
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
        if any(ir.p != 1 for _, ir in scalars):
            raise ValueError("only even scalars (0e) are supported in the hidden irreps")
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
        return enn.Gate(
            scalars, [torch.nn.functional.silu] * len(scalars),
            gates, [torch.sigmoid] * len(gates), gated,
        )

    def forward(
        self,
        h: torch.Tensor,
        attr: torch.Tensor | None,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_index: torch.Tensor,
        paired: bool = False,
    ) -> torch.Tensor:
        """One round of messages.

        Args:
            h: ``[N, dim(irreps_in)]`` node features; attr: ``[N, attr_dim]`` or None.
            edge_sh: ``[E, dim(irreps_sh)]``; edge_radial: ``[E, num_basis]`` (zero past the
                cutoff), or ``[E / 2, num_basis]``, one row a pair, when ``paired``.
            edge_index: ``[2, E]`` (sender j, receiver i).
            paired: edges ``2k`` and ``2k + 1`` are the two directions of one pair.
        Returns:
            ``[N, dim(irreps_out)]``.
        """
        x = self.linear_up(h)
        agg = self.convolve(x, edge_sh, self.edge_weights(edge_radial, paired), edge_index) * self.norm
        if attr is not None:
            skip = self.self_interaction(h, attr)
        else:
            skip = self.self_interaction(h)
        agg = self.linear_down(agg)
        if self.product is not None:
            agg = self.linear_gate(agg + self.product(agg, agg))
        out = self.gate(agg + skip)
        return h + out if self.residual else out
