"""train.anneal: the cosine cooldown of the step size at the end of a (resumed) run (a\nrun with it: tests/unit/train/test_pretrain.py)."""

from __future__ import annotations

import numpy as np
import pytest

from molpre.config import ConfigError
from molpre.train.anneal import FLOOR, anneal_factor
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
