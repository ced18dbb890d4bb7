"""gather_rows / sum_rows: index_select / index_add's numbers, derivatives of every order,
and no atomic adds in Inductor's code at two threads (the reason they exist)."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch.func import grad

from molpre.nn.edge_conv import path_runs
from molpre.nn.segment import gather_rows, sum_rows

SENDER = torch.tensor([0, 1, 2, 1, 0, 3])
RECEIVER = torch.tensor([1, 0, 0, 2, 3, 3])


def _form(fn, form):
    """``fn`` as eager code runs it (index_select/index_add) or as compiled code traces it
    (gather/scatter_add; the aot_eager backend runs the traced graph without Inductor)."""
    if form == "eager":
        return fn
    torch._dynamo.reset()
    return torch.compile(fn, backend="aot_eager", fullgraph=True, dynamic=False)


FORMS = ["eager", "compiled"]


@pytest.mark.parametrize("form", FORMS)
def test_gather_rows_equals_indexing_for_any_trailing_shape(form):
    x = torch.randn(4, 3, 5)
    gather = _form(gather_rows, form)
    assert torch.equal(gather(x, SENDER), x[SENDER])
    assert torch.equal(gather(x[:, 0, 0].contiguous(), SENDER), x[SENDER, 0, 0])


@pytest.mark.parametrize("form", FORMS)
def test_sum_rows_equals_index_add_with_empty_rows(form):
    src = torch.randn(6, 2, 3)
    want = torch.zeros(5, 2, 3).index_add(0, RECEIVER, src)
    got = _form(sum_rows, form)(src, RECEIVER, 5)
    torch.testing.assert_close(got, want)
    assert torch.equal(got[4], torch.zeros(2, 3))  # row 4 receives nothing


@pytest.mark.parametrize("form", FORMS)
def test_no_edges(form):
    x = torch.randn(1, 8)
    empty = torch.zeros(0, dtype=torch.long)
    assert _form(gather_rows, form)(x, empty).shape == (0, 8)
    assert torch.equal(_form(sum_rows, form)(torch.zeros(0, 8), empty, 1), torch.zeros(1, 8))


def _force_loss(gather, scatter, dtype=torch.float64):
    """A force-training loss: weights -> ||d energy / d pos||^2, energy built from a gather and
    a neighbour sum (the double backward of a force loss)."""
    pos = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)

    def energy(p, w):
        vec = gather(p, SENDER) - gather(p, RECEIVER)
        return scatter(torch.tanh(vec @ w), RECEIVER, 4).pow(2).sum()

    def loss(w):
        return grad(energy)(pos, w).pow(2).sum()

    return loss


def _reference(x, i):
    return x[i]


def _reference_sum(m, i, n):
    return m.new_zeros(n, m.shape[1]).index_add(0, i, m)


@pytest.mark.parametrize("form", FORMS)
def test_second_order_weight_gradients_match_index_ops(form):
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    ref = torch.autograd.grad(_force_loss(_reference, _reference_sum)(w), w)[0]
    loss = _form(_force_loss(gather_rows, sum_rows), form)
    got = torch.autograd.grad(loss(w), w)[0]
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_path_runs():
    assert path_runs([0, 3, 1, 1, 1, 2, 2, 2]) == ((0, 1), (3, 1), (1, 3), (2, 3))
    assert path_runs([]) == ()


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="Inductor's CPU backend needs a C++ compiler")
def test_inductor_code_at_two_threads_has_no_atomic_adds():
    """The point of the pair: Inductor's code for a force loss's forward and backward at two
    threads holds no ``atomic_add`` (index_select/index_add's does)."""
    from torch._inductor.utils import run_and_get_code

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        codes = {}
        for name, ops in {"index": (_reference, _reference_sum), "pair": (gather_rows, sum_rows)}.items():
            torch._dynamo.reset()
            w = torch.randn(3, 5, requires_grad=True)
            loss = torch.compile(_force_loss(*ops, dtype=torch.float32), fullgraph=True)

            def step(loss=loss, w=w):
                torch.autograd.grad(loss(w), w)

            _, code = run_and_get_code(step)
            codes[name] = "\n".join(code)
    finally:
        torch.set_num_threads(threads)
        torch._dynamo.reset()
    assert "atomic_add" in codes["index"]  # the check can fail: the old ops do show it
    assert "atomic_add" not in codes["pair"]
