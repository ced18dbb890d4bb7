"""Energies and forces in one compiled graph: force training without a double backward.

A force loss needs the gradient of ``F = -dE/dpos`` with respect to the weights, a double
backward, which a ``torch.compile`` graph does not support. NequIP's answer, used here, is
to put the force computation *inside* the graph: :func:`features_and_gradient` computes the
learned atomic energies and their gradient ``dE_learned/dpos`` with ``torch.func.grad``, and
``torch.compile`` traces both into one graph. The weights' gradients of a loss on
``F`` are then a first-order backward of that graph, which AOTAutograd compiles too.

Only the pos -> atomic-energy path is compiled: the encoder's blocks and the energy head's
atomic readout (``ExtensiveHead.atomic_terms``). The element embedding (its input checks read
values), the per-molecule sums, the atomref and the ZBL pair term (its gradient is added
eagerly) stay eager. :class:`ForceGraph` holds the compiled callable beside the encoder's
:class:`~molpre.nn.compiled.BlockRunner`, follows its switch (``compile_blocks()``,
``MOLPRE_COMPILE=1``) and, like it, falls back to the eager path with one warning when the
compile fails.

Numbers: the eager ones to float32 rounding (forces ~1e-7 eV/Angstrom relative, weight
gradients ~1e-6 relative; tests/unit/models/test_compiled_forces.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.func import grad as func_grad

from molpre.data import keys
from molpre.data.graph import edges_paired
from molpre.nn.compiled import FAILED, BlockRunner


class AtomicEnergy(nn.Module):
    """``(pos [N, 3] Angstrom, h [N, C], attr [N, A] | None, edge_index [2, E], paired)`` ->
    ``(features [N, F], last block's h [N, D], learned atomic energies [N] eV)``.

    Shares (does not copy) the encoder's and the head's modules.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, pos, h, attr, edge_index, paired=False):
        features, last = self.encoder._run_blocks(pos, h, attr, edge_index, paired)
        return features, last, self.head.atomic_terms(features)


def features_and_gradient(core: AtomicEnergy, names: list[str], params: list[torch.Tensor],
                          pos: torch.Tensor, h: torch.Tensor, attr: torch.Tensor | None,
                          edge_index: torch.Tensor, paired: bool = False):
    """``(features, last h, dE/dpos [N, 3])`` with E the sum of ``core``'s atomic energies.

    ``params`` (``core``'s parameters named ``names``) are explicit inputs, so the outputs
    stay differentiable in the weights: a first-order backward of this function is the
    double backward of the eager force loss.
    """
    weights = dict(zip(names, params, strict=True))

    def energy(p):
        features, last, atomic = functional_call(core, weights, (p, h, attr, edge_index, paired))
        return atomic.sum(), (features, last)

    gradient, (features, last) = func_grad(energy, has_aux=True)(pos)
    return features, last, gradient


class ForceGraph(BlockRunner):
    """The compiled :func:`features_and_gradient` of one model, built on first use (a
    :class:`~molpre.nn.compiled.BlockRunner`: its compile, failure and copy rules).

    Not an ``nn.Module``: copies and pickles come back without the compiled callable.
    """

    def __init__(self, backend: str = "inductor") -> None:
        super().__init__(enabled=True, backend=backend)
        self._core: AtomicEnergy | None = None  # one per (encoder, head): the graph's guards

    def __call__(self, encoder: nn.Module, head: nn.Module, pos, h, attr, edge_index):
        """``(features, last h, dE/dpos)`` of ``encoder`` + ``head``'s atomic energies, or
        ``None`` when the compile failed (the caller then runs eagerly; the failure is warned
        about once)."""
        if self.failed is not None:
            return None
        if self._core is None or self._core.encoder is not encoder or self._core.head is not head:
            self._core = AtomicEnergy(encoder, head)
        names, params = zip(*self._core.named_parameters(), strict=True)
        out = self.compiled_call(features_and_gradient,
                                 (self._core, list(names), list(params), pos, h, attr, edge_index,
                                  edges_paired(edge_index)),
                                 "the energy and forces")
        return None if out is FAILED else out

    def encode(self, encoder: nn.Module, head: nn.Module, batch: dict, keep_graph: bool):
        """``(encoder outputs, dE_learned/dpos [N, 3])`` of ``batch`` from the compiled graph,
        or None where ``encoder`` runs eagerly (its runner is off) or the compile failed.

        The graph sees detached positions: a caller adds any other position dependence (a pair
        term) by autograd itself. ``keep_graph``: the outputs keep a graph to the weights
        (training); otherwise the graph runs under ``no_grad``.
        """
        if not encoder.runner.enabled:
            return None
        dtype = next(encoder.parameters()).dtype
        h, attr = encoder.embed(batch[keys.ATOMIC_NUMBERS], dtype)
        with torch.enable_grad() if keep_graph else torch.no_grad():
            result = self(encoder, head, batch[keys.POSITIONS].to(dtype).detach(), h, attr,
                          batch[keys.EDGE_INDEX])
        if result is None:
            return None
        features, last, gradient = result
        return encoder.assemble(dict(batch), features, last), gradient

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_core": None}
