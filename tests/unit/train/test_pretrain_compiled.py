"""Pretraining on cheap forces through the compiled graph (molpre.models.compiled_forces):
the eager losses and weight gradients, with no double backward."""

from __future__ import annotations

import torch
from ase.build import molecule

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.compiled_forces import ForceGraph
from molpre.train.objectives.cheap import GRADIENT
from molpre.train.pretrain_module import PretrainModule

ENCODER = dict(channels=8, lmax=1, num_layers=2, cutoff=4.0, num_radial_basis=4,
               radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3)
OBJECTIVES = {"cheap_energy": {"weight": 1.0, "scale": 0.1},
              "cheap_forces": {"weight": 1.0, "scale": 0.5}}


def _module(compiled: bool) -> PretrainModule:
    torch.manual_seed(0)
    module = PretrainModule(ENCODER, OBJECTIVES)
    module.encoder.compile_blocks(compiled)
    module.force_graph = ForceGraph("aot_eager")  # the same trace, without code generation
    return module


def _batch(names):
    batch = collate([atoms_to_sample(molecule(n), ENCODER["cutoff"]) for n in names])
    generator = torch.Generator().manual_seed(len(names))
    batch[keys.CHEAP_ENERGY] = torch.randn(int(batch[keys.NUM_GRAPHS]), generator=generator)
    batch[keys.CHEAP_FORCES] = torch.randn(batch[keys.POSITIONS].shape, generator=generator)
    return batch


def _step(module, batch):
    module.zero_grad()
    terms = module.losses(batch)
    terms["loss"].backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in terms.items()}, grads


def test_cheap_forces_from_the_compiled_graph_train_as_the_eager_ones():
    eager, compiled = _module(False), _module(True)
    for names in (["H2O", "CH3OH"], ["NH3", "CH3CH2OH", "CH4"]):
        batch = _batch(names)
        terms0, grads0 = _step(eager, batch)
        assert GRADIENT in compiled._clean_pass(batch, compiled.objectives.values())
        terms1, grads1 = _step(compiled, batch)
        assert compiled.force_graph.failed is None
        assert terms0.keys() == terms1.keys()
        for name, value in terms0.items():
            assert abs(value - terms1[name]) <= 1e-5 * max(1.0, abs(value)), name
        assert grads0.keys() == grads1.keys()
        for name, grad in grads0.items():
            assert torch.allclose(grad, grads1[name], rtol=1e-4, atol=1e-6), name


def test_eager_modules_take_the_gradient_by_autograd():
    module = _module(False)
    out = module._clean_pass(_batch(["H2O"]), module.objectives.values())
    assert GRADIENT not in out and out[keys.POSITIONS].requires_grad
