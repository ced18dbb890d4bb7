"""Edges in pairs (molpre.data.graph.edges_paired): the radial MLP of every block runs once a
pair, and energies, forces and weight gradients are those of the same graph in any order."""

import torch
from encoder_testlib import ATOMREF, TINY, force_loss_step, make_batch

from molpre.data import keys
from molpre.data.graph import edges_paired
from molpre.models.compiled_forces import ForceGraph
from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel

NAMES = ["H2O", "CH3CH2OH", "CH3OH"]


def _model(dtype, compiled=False):
    torch.manual_seed(0)
    model = EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5).to(dtype)
    model.encoder.compile_blocks(compiled)
    return model


def _unpaired(batch):
    """The same graph with its edges in receiver order (not pairs side by side)."""
    edges = batch[keys.EDGE_INDEX]
    order = torch.argsort(edges[1] * edges.shape[1] + edges[0])
    out = {**batch, keys.EDGE_INDEX: edges[:, order]}
    assert not edges_paired(out[keys.EDGE_INDEX])
    return out


def _assert_same(a, b, tol):
    (e0, f0, g0), (e1, f1, g1) = a, b
    assert torch.allclose(e0, e1, rtol=0, atol=tol)
    assert torch.allclose(f0, f1, rtol=0, atol=tol)
    assert g0.keys() == g1.keys()
    for name, grad in g0.items():
        assert torch.allclose(grad, g1[name], rtol=tol, atol=tol), name


def test_the_radial_mlp_sees_one_row_a_pair_only_when_edges_are_paired():
    model = _model(torch.float64)
    batch = make_batch(NAMES, torch.float64)
    rows = []
    handle = model.encoder.blocks[0].radial.register_forward_hook(
        lambda module, args, out: rows.append(out.shape[0]))
    try:
        model(batch)
        model(_unpaired(batch))
    finally:
        handle.remove()
    n_edges = batch[keys.EDGE_INDEX].shape[1]
    assert rows == [n_edges // 2, n_edges]


def test_paired_edges_give_the_energies_forces_and_weight_gradients_of_any_order():
    model = _model(torch.float64)
    batch = make_batch(NAMES, torch.float64)
    _assert_same(force_loss_step(model, _unpaired(batch)),
                 force_loss_step(model, batch), 1e-10)


def test_the_traced_graph_with_paired_edges_gives_the_eager_numbers_of_any_order():
    """Compiled blocks (aot_eager: the same trace, no code generation) on paired edges, the
    broadcast edge product included, against eager blocks on unpaired ones."""
    eager, traced = _model(torch.float32), _model(torch.float32, compiled=True)
    traced.encoder.runner.backend = "aot_eager"
    traced.force_graph = ForceGraph("aot_eager")
    batch = make_batch(NAMES)
    _assert_same(force_loss_step(eager, _unpaired(batch)),
                 force_loss_step(traced, batch), 1e-4)
    assert traced.force_graph.failed is None and traced.force_graph._compiled is not None
    with torch.no_grad():
        a, b = eager(_unpaired(batch)), traced(batch)
    assert torch.allclose(a[keys.PREDICTED_ENERGY], b[keys.PREDICTED_ENERGY], rtol=0, atol=1e-4)
    assert traced.encoder.runner.failed is None and traced.encoder.runner._compiled is not None
