"""Encoder.compile_blocks: the same numbers as eager where it runs, eager where it must."""

import copy

import pytest
import torch
from encoder_testlib import ATOMREF, TINY, make_batch

from molpre.data import keys
from molpre.models.encoder import Encoder
from molpre.models.energy import EnergyModel
from molpre.nn.compiled import BlockRunner, compile_requested


def _model():
    torch.manual_seed(0)
    return EnergyModel(Encoder(TINY), ATOMREF, energy_scale=0.5)


def test_forces_under_grad_mode_stay_eager_and_no_grad_is_compiled():
    runner = BlockRunner(enabled=True)
    assert runner.usable(needs_double_backward=False)
    assert not runner.usable(needs_double_backward=True)
    assert not BlockRunner(enabled=False).usable(needs_double_backward=False)


def test_env_variable_switches_it_on(monkeypatch):
    monkeypatch.setenv("MOLPRE_COMPILE", "1")
    assert compile_requested() and Encoder(TINY).runner.enabled
    monkeypatch.setenv("MOLPRE_COMPILE", "0")
    assert not compile_requested() and not Encoder(TINY).runner.enabled


def test_a_compile_failure_warns_once_and_falls_back_to_eager(monkeypatch):
    model = _model()
    batch = make_batch(["H2O", "CH3CH2OH"])
    with torch.no_grad():
        expected = model(batch)[keys.PREDICTED_ENERGY]

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    model.encoder.compile_blocks()
    with pytest.warns(RuntimeWarning, match="no C.. compiler here"), torch.no_grad():
        got = model(batch)[keys.PREDICTED_ENERGY]
    assert torch.equal(got, expected) and model.encoder.runner.failed
    with torch.no_grad():  # stays eager, no second warning
        assert torch.equal(model(batch)[keys.PREDICTED_ENERGY], expected)


def test_copies_and_pickles_drop_the_compiled_callable():
    encoder = Encoder(TINY).compile_blocks()
    encoder.runner._compiled = object()
    twin = copy.deepcopy(encoder)
    assert twin.runner.enabled and twin.runner._compiled is None
    assert encoder.runner.__getstate__()["_compiled"] is None


@pytest.mark.slow
def test_compiled_blocks_give_eager_numbers_for_prediction_and_weight_gradients():
    model = _model()
    batches = [make_batch(["H2O", "CH3CH2OH"]), make_batch(["NH3", "CH4", "CH3OH"])]
    eager = [model(b)[keys.PREDICTED_ENERGY] for b in batches]
    grads = torch.autograd.grad(eager[0].sum(), list(model.encoder.parameters()),
                                allow_unused=True)
    model.encoder.compile_blocks()
    compiled = [model(b)[keys.PREDICTED_ENERGY] for b in batches]  # two shapes, one graph
    cgrads = torch.autograd.grad(compiled[0].sum(), list(model.encoder.parameters()),
                                 allow_unused=True)
    assert model.encoder.runner.failed is None and model.encoder.runner._compiled is not None
    for a, b in zip(eager, compiled, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-4)
    for a, b in zip(grads, cgrads, strict=True):
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    forces = model(batches[0], compute_forces=True)[keys.PREDICTED_FORCES]  # eager path
    forces.pow(2).sum().backward()


def test_auto_compiles_long_runs_and_an_explicit_setting_wins(monkeypatch):
    from molpre.nn.compiled import AUTO_COMPILE_STEPS, compile_wanted

    monkeypatch.delenv("MOLPRE_COMPILE", raising=False)
    assert not compile_wanted(None, AUTO_COMPILE_STEPS - 1) and not compile_wanted(None, None)
    assert compile_wanted(None, AUTO_COMPILE_STEPS)
    assert not compile_wanted(False, 10 * AUTO_COMPILE_STEPS) and compile_wanted(True, 1)
    monkeypatch.setenv("MOLPRE_COMPILE", "1")
    assert compile_wanted(None, 1) and not compile_wanted(False, 1)


def test_pretraining_plans_its_steps_from_max_steps_or_the_training_shards():
    from molpre.train.pretrain import planned_steps
    from molpre.train.pretrain_config import load_pretrain_config as resolve

    manifest = {"shards": [{"file": "a", "molecules": 100}, {"file": "b", "molecules": 60},
                           {"file": "held", "molecules": 1000}]}
    config = resolve({"train": {"batch_size": 16, "epochs": 3}})
    assert planned_steps(config, manifest, ["a", "b"]) == 3 * 10
    config = resolve({"train": {"batch_size": 16, "max_steps": 4000}})
    assert planned_steps(config, manifest, ["a", "b"]) == 4000


def test_the_predictor_compile_option_switches_every_encoder(monkeypatch):
    from molpre.inference import Predictor

    monkeypatch.delenv("MOLPRE_COMPILE", raising=False)
    predictor = Predictor(_model(), cutoff=TINY.cutoff)
    assert not predictor.model.encoder.runner.enabled
    predictor.configure(compile=True)
    assert predictor.model.encoder.runner.enabled and predictor.options.compile
    predictor.configure(compile=False)
    assert not predictor.model.encoder.runner.enabled


def test_a_finetune_with_compile_starts_from_a_compiled_encoder(monkeypatch):
    from molpre.train.finetune_config import FinetuneConfig
    from molpre.train.modes import start_encoder

    monkeypatch.delenv("MOLPRE_COMPILE", raising=False)
    config = FinetuneConfig(data="labels.db", out="ft", compile=True)
    assert start_encoder(config).runner.enabled
    assert not start_encoder(FinetuneConfig(data="labels.db", out="ft")).runner.enabled


def test_compiling_raises_dynamos_graph_limit_for_processes_that_build_many_models():
    import torch._dynamo.config as dynamo

    from molpre.nn.compiled import RECOMPILE_LIMIT

    before = dynamo.recompile_limit
    try:
        dynamo.recompile_limit = 8
        runner = BlockRunner(enabled=True)
        runner._compiled = None
        runner(lambda x: x + 1, torch.zeros(2))  # builds (lazily) the compiled callable
        assert dynamo.recompile_limit >= RECOMPILE_LIMIT
    finally:
        dynamo.recompile_limit = before
