"""Row gathers and neighbour sums whose derivatives, of every order, are each other.

A message-passing block reads node rows onto edges (``x[sender]``) and sums edge rows onto
nodes (``index_add``). Autograd turns each into the other in the backward pass, and force
training differentiates twice. With ``index_select``/``index_add`` the adjoint of a gather
is an ``index_add``, which Inductor (``torch.compile`` on CPU) lowers, at more than one
thread, to a parallel loop of per-element atomic compare-and-swap adds: on a 2-core machine
those kernels ran *slower* on 2 threads than on 1 (bench/results/speed/README.md).

Here the pair is ``torch.gather`` / ``Tensor.scatter_add`` with an index expanded along the
channels. Their adjoints are each other, so every derivative stays in the pair, and:

* compiled at one thread, Inductor fuses them into the surrounding loops (plain adds);
* compiled at more threads, Inductor hands ``scatter_add`` to ATen's kernel
  (``torch._inductor.config.cpp.fallback_scatter_reduce_sum``: sorted, parallel, no atomics)
  instead of atomics.

Eager (outside ``torch.compile``) they are ``index_select``/``index_add``, whose ATen kernels
were as fast at one thread and ~5% faster at two (bench/results/speed/README.md). The numbers
of both forms agree up to float summation order.
"""

from __future__ import annotations

import math

import torch


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for ``x [N, ...]`` and ``index [E]`` (int64): ``[E, ...]``."""
    if not torch.compiler.is_compiling():
        return x.index_select(0, index)
    flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    rows = flat.gather(0, index.view(-1, 1).expand(-1, flat.shape[1]))
    return rows.view((index.shape[0], *x.shape[1:]))


def sum_rows(src: torch.Tensor, index: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Row ``i`` of the result is the sum of the rows ``e`` of ``src [E, ...]`` with
    ``index[e] == i``: ``[num_rows, ...]`` (zeros where no row lands)."""
    if not torch.compiler.is_compiling():
        return src.new_zeros((num_rows, *src.shape[1:])).index_add(0, index, src)
    flat = src.reshape(src.shape[0], math.prod(src.shape[1:]))
    out = flat.new_zeros(num_rows, flat.shape[1])
    out = out.scatter_add(0, index.view(-1, 1).expand_as(flat), flat)
    return out.view((num_rows, *src.shape[1:]))
