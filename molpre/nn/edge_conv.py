"""A dense-coupling form of the ``uvu`` edge tensor product: the same numbers in three ops.

e3nn's ``TensorProduct`` with per-edge weights (``uvu`` paths of node features times edge
spherical harmonics) runs one small einsum per path plus its layout bookkeeping, and the
double backward of force training multiplies that by ten. When every input irrep has the
same multiplicity ``U`` (molpre's hidden irreps do), the whole product is

    out[e, u, p] = w[e, path(p), u] * sum_{a, b} x[e, u, a] * Y[e, b] * C[a, b, p]

with ``a`` the input components (all irreps concatenated), ``b`` the harmonics' components,
``p`` the output components of every path and ``C`` the Clebsch-Gordan coefficients times
e3nn's path weights. :class:`DenseEdgeConv` reads ``C`` off the e3nn module itself (probing it
with basis vectors in float64), so normalisation, path order and output layout are e3nn's;
it is computed as one ``mm`` (``Y C``), one ``bmm`` and one product, each with cheap first
and second derivatives (inside ``torch.compile`` the ``bmm`` is a broadcast product summed over
the input components, which Inductor fuses with what follows). Unit and parameter free: the
weights come from the radial MLP.
"""

from __future__ import annotations

import copy

import torch
from e3nn import o3
from torch import nn


def _uniform_multiplicity(irreps: o3.Irreps) -> int:
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise ValueError(f"dense edge conv needs one multiplicity for all irreps, got {irreps}")
    return muls.pop()


@torch.no_grad()
def coupling_tensor(tp: o3.TensorProduct) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C [d_in, d_sh, P] float64, path_of [P] long)`` of a ``uvu`` tensor product.

    ``d_in``: components of one channel of ``irreps_in1`` (irreps in order); ``P``: output
    components of one channel, irreps of ``irreps_out`` in order; ``path_of[p]``: the
    instruction (weight block) that feeds output component ``p``.
    """
    if any(ins.connection_mode != "uvu" for ins in tp.instructions):
        raise ValueError("dense edge conv supports 'uvu' instructions only")
    if any(mul != 1 for mul, _ in tp.irreps_in2):
        raise ValueError("dense edge conv needs multiplicity 1 in the second input")
    _uniform_multiplicity(tp.irreps_in1)
    _uniform_multiplicity(tp.irreps_out)
    d_in = sum(ir.dim for _, ir in tp.irreps_in1)
    d_sh = tp.irreps_in2.dim
    tp64 = copy.deepcopy(tp).to(torch.float64)
    x1 = torch.zeros(d_in, d_sh, tp.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.zeros(d_in, d_sh, d_sh, dtype=torch.float64)
    starts = [0]
    for _, ir in tp.irreps_in1:
        starts.append(starts[-1] + ir.dim)
    for i, (sl, (_, ir)) in enumerate(zip(tp.irreps_in1.slices(), tp.irreps_in1, strict=True)):
        for m in range(ir.dim):  # channel 0, component m of irrep i
            x1[starts[i] + m, :, sl.start + m] = 1.0
    x2[:, torch.arange(d_sh), torch.arange(d_sh)] = 1.0
    weights = torch.ones(d_in, d_sh, tp64.weight_numel, dtype=torch.float64)
    out = tp64(x1, x2, weights)  # [d_in, d_sh, dim_out]
    columns, path_of = [], []
    feeds = {ins.i_out: k for k, ins in enumerate(tp.instructions)}
    for k, (sl, (_, ir)) in enumerate(zip(tp.irreps_out.slices(), tp.irreps_out, strict=True)):
        columns.append(out[:, :, sl.start:sl.start + ir.dim])  # channel 0 of output irrep k
        path_of.extend([feeds.get(k, -1)] * ir.dim)
    coupling = torch.cat(columns, dim=-1)
    if min(path_of) < 0:
        raise ValueError("every output irrep must be fed by exactly one instruction")
    return coupling, torch.tensor(path_of, dtype=torch.long)


def path_runs(path_of: list[int]) -> tuple[tuple[int, int], ...]:
    """``[0, 3, 1, 1, 1]`` -> ``((0, 1), (3, 1), (1, 3))``: consecutive equal entries as
    ``(value, count)``."""
    runs: list[list[int]] = []
    for p in path_of:
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return tuple((p, n) for p, n in runs)


class DenseEdgeConv(nn.Module):
    """The ``uvu`` edge tensor product of ``tp`` in component-major layout.

    ``forward(x [E, d_in, U], sh [E, d_sh], weight [E, weight_numel]) -> [E, P, U]``:
    ``x``: gathered sender features, component-major (:meth:`to_components`); ``sh``: edge
    harmonics; ``weight``: per-edge path weights in e3nn's layout (instruction-major, then
    channel). :meth:`to_irreps` turns ``[N, P, U]`` into e3nn's layout of ``irreps_out``.
    Channels stay the fastest axis throughout, so every gather is of contiguous rows.
    """

    def __init__(self, tp: o3.TensorProduct) -> None:
        super().__init__()
        coupling, path_of = coupling_tensor(tp)
        self.mul = _uniform_multiplicity(tp.irreps_in1)
        self.irreps_in, self.irreps_out = tp.irreps_in1, tp.irreps_out
        self.d_in, self.d_sh, self.n_out = coupling.shape
        self.n_paths = len(tp.instructions)
        # [d_sh, P * d_in]: one mm turns the harmonics into per-edge coupling matrices; the
        # float64 master keeps .double() after .float() exact (see _apply)
        self._master = coupling.permute(1, 2, 0).reshape(self.d_sh, -1).contiguous()
        self.register_buffer("coupling", self._master.to(torch.get_default_dtype()),
                             persistent=False)
        #: ``path_of`` (the path feeding each output component) as runs ``(path, width)``: the
        #: forward widens the path weights by slicing and expanding, whose adjoint is a sum
        #: (``index_select``'s would be an atomic scatter once compiled at several threads;
        #: see molpre.nn.segment)
        self.path_runs = path_runs(path_of.tolist())
        self._in_dims = [ir.dim for _, ir in self.irreps_in]
        self._out_dims = [ir.dim for _, ir in self.irreps_out]

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.coupling = self._master.to(self.coupling.device, self.coupling.dtype)
        return self

    def to_components(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, dim(irreps_in)]`` e3nn layout -> ``[N, d_in, U]`` component-major."""
        n = x.shape[0]
        if len(self._in_dims) == 1 and self._in_dims[0] == 1:
            return x.reshape(n, 1, self.mul)
        blocks = x.split([self.mul * d for d in self._in_dims], dim=-1)
        return torch.cat([b.reshape(n, self.mul, d).transpose(1, 2)
                          for b, d in zip(blocks, self._in_dims, strict=True)], dim=1)

    def to_irreps(self, y: torch.Tensor) -> torch.Tensor:
        """``[N, P, U]`` component-major -> ``[N, dim(irreps_out)]`` e3nn layout."""
        blocks = y.split(self._out_dims, dim=1)
        return torch.cat([b.transpose(1, 2).flatten(1) for b in blocks], dim=-1)

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        e = x.shape[0]
        coupling = (sh @ self.coupling).view(e, self.n_out, self.d_in)
        if self.d_in == 1:  # scalar inputs (a first block): an outer product, no matmul
            messages = coupling * x  # [E, P, 1] * [E, 1, U]
        elif torch.compiler.is_compiling():
            # a broadcast product summed over the input components: Inductor fuses it with the
            # path weights and the neighbour sum, so no [E, P, U] bmm output goes through
            # memory (the compiled Predictor 1.5x on MOSES molecules: bench/results/speed)
            messages = (coupling.unsqueeze(-1) * x.unsqueeze(1)).sum(2)  # [E, P, U]
        else:
            messages = torch.bmm(coupling, x)  # [E, P, U]
        w = weight.view(e, self.n_paths, self.mul)
        w = torch.cat([w[:, p:p + 1].expand(e, width, self.mul) for p, width in self.path_runs],
                      dim=1)  # [E, P, U]: w[:, path_of]
        return messages * w
