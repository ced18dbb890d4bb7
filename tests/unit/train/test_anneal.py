"""train.anneal: the cosine cooldown of the step size at the end of a (resumed) run (a\nrun with it: tests/unit/train/test_pretrain.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from molpre.config import ConfigError
from molpre.train.anneal import FLOOR, LrAnneal, anneal_factor
from molpre.train.pretrain_config import TrainConfig


def test_factor_is_constant_then_half_a_cosine_down_to_the_floor():
    assert anneal_factor(0.7, 0.0) == 1.0
    assert anneal_factor(0.0, 0.5) == 1.0 and anneal_factor(0.5, 0.5) == 1.0
    assert anneal_factor(1.0, 0.5) == pytest.approx(FLOOR)
    assert anneal_factor(0.75, 0.5) == pytest.approx(FLOOR + (1 - FLOOR) * 0.5)
    cooling = [anneal_factor(p, 0.5) for p in np.linspace(0.5, 1.0, 11)]
    assert all(a > b for a, b in zip(cooling, cooling[1:], strict=False))
    assert anneal_factor(1.3, 0.5) == pytest.approx(FLOOR)  # past the budget: stays at the floor


def test_anneal_needs_a_budget_and_a_fraction():
    with pytest.raises(ConfigError, match="max_time_s or train.max_steps"):
        TrainConfig(anneal=0.5)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        TrainConfig(anneal=1.5, max_steps=10)
    assert TrainConfig(anneal=0.5, max_time_s=60).anneal == 0.5


def test_a_time_budget_counts_from_the_resume_of_a_restored_timer(monkeypatch):
    import torch
    from lightning.pytorch.callbacks import Timer

    from molpre.train import anneal as module

    timer = Timer(duration={"seconds": 100})
    timer._offset = 40.0  # a resumed run: its checkpoint's timer had run 40 of its 100 s
    clock = iter([1000.0, 1030.0, 1060.0, 1090.0])
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    weight = torch.nn.Parameter(torch.zeros(1))
    trainer = SimpleNamespace(callbacks=[timer], global_step=0, max_steps=-1,
                              optimizers=[torch.optim.SGD([weight], lr=0.5)])
    callback = LrAnneal(base_lr=1e-3, anneal=1.0)
    callback.on_train_start(trainer, None)  # clock 1000: 60 s left
    for expected in (0.5, 1.0):  # clock 1030, then 1060 (and past the budget: the floor)
        callback.on_train_batch_start(trainer, None, None, 0)
        group_lr = trainer.optimizers[0].param_groups[0]["lr"]
        assert group_lr == pytest.approx(1e-3 * anneal_factor(expected, 1.0))
