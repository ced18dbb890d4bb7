"""Energies and forces from one compiled graph (molpre.models.compiled_forces): the eager
numbers, weight gradients of a force loss without a double backward, eager on failure."""

import copy
import pickle

import pytest
import torch
from encoder_testlib import ATOMREF, TINY, force_loss_step, make_batch

from molpre.data import keys
from molpre.models.compiled_forces import ForceGraph
from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel

BATCHES = (["H2O", "CH3CH2OH"], ["NH3", "CH4", "CH3OH"])


def _model(compiled: bool):
    torch.manual_seed(0)
    model = EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5)
    return model.encoder.compile_blocks(compiled) and model


def test_a_compile_failure_warns_once_and_gives_the_eager_forces(monkeypatch):
    batch = make_batch(BATCHES[0])
    energy, forces, grads = force_loss_step(_model(False), batch)

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    model = _model(True)
    with pytest.warns(RuntimeWarning, match="energy and forces failed"):
        got = force_loss_step(model, batch)
    assert model.force_graph.failed
    assert torch.equal(got[0], energy) and torch.equal(got[1], forces)
    assert got[2].keys() == grads.keys()


def test_eager_models_never_build_the_graph():
    model = _model(False)
    model(make_batch(BATCHES[0]), compute_forces=True)
    assert model.force_graph._compiled is None


def test_copies_and_pickles_drop_the_compiled_callable():
    graph = ForceGraph()
    graph._compiled, graph.failed = object(), None
    assert copy.deepcopy(graph)._compiled is None
    assert pickle.loads(pickle.dumps(graph))._compiled is None


def _compare_with_eager(backend: str):
    eager, compiled = _model(False), _model(True)
    compiled.force_graph = ForceGraph(backend)
    for names in BATCHES:  # two shapes: one graph with symbolic sizes
        batch = make_batch(names)
        e0, f0, g0 = force_loss_step(eager, batch)
        e1, f1, g1 = force_loss_step(compiled, batch)
        assert compiled.force_graph.failed is None and compiled.force_graph._compiled is not None
        assert torch.allclose(e0, e1, rtol=0, atol=1e-4)
        assert torch.allclose(f0, f1, rtol=1e-4, atol=1e-5)
        assert g0.keys() == g1.keys()
        for name, grad in g0.items():
            assert torch.allclose(grad, g1[name], rtol=1e-4, atol=1e-5), name
        with torch.no_grad():  # inference: forces, no graph to the weights
            out = compiled(batch, compute_forces=True)
        assert not out[keys.PREDICTED_FORCES].requires_grad
        assert torch.allclose(out[keys.PREDICTED_FORCES], f0, rtol=1e-4, atol=1e-5)


def test_the_traced_graph_gives_the_eager_forces_and_weight_gradients():
    """The same trace (dynamo, torch.func.grad, AOTAutograd) without Inductor's code
    generation, which takes minutes on a CPU: the slow test below runs that too."""
    _compare_with_eager("aot_eager")


@pytest.mark.slow
def test_compiled_forces_and_their_weight_gradients_are_the_eager_ones():
    _compare_with_eager("inductor")
