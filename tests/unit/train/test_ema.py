"""Finetuning with an EMA of the weights (the kept model is the one validation scored) and
with a cosine cooldown of lr (``anneal``: the whole epoch budget runs, lr falls)."""

import pytest

from molpre.data.datasets import load_labeled
from molpre.train.anneal import FLOOR
from molpre.train.finetune import finetune
from molpre.train.finetune_config import ConfigError, FinetuneConfig


@pytest.fixture(scope="module")
def qm9_small(shared_data):
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol")
    return data.subset(range(120))


def _run(data, tmp_path, monkeypatch, **fields):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = dict(data="qm9-subset", target="u0_atom", unit="kcal/mol", budget=60,
                    test_fraction=0.2, epochs=6, batch_size=8, lr=1e-2, patience=10, seed=0,
                    out=str(tmp_path / "out"), progress=False, threads=1, log_model=False)
    config = FinetuneConfig(**{**settings, **fields})
    return finetune(config, data=data)


def test_ema_weights_are_validated_kept_and_saved(qm9_small, tmp_path, monkeypatch):
    """With EMA, validation scores the averaged weights; the model kept must be those
    (not the raw weights of that epoch), so its recomputed validation MAE is the best logged."""
    result = _run(qm9_small, tmp_path, monkeypatch, ema_decay=0.9)
    logged = min(row["val_mae_mev"] for row in result.history)
    assert result.metrics["best_val_mae_mev"] == pytest.approx(logged, rel=1e-4)
    plain = _run(qm9_small, tmp_path / "plain", monkeypatch)
    assert [r["val_mae_mev"] for r in plain.history] != [r["val_mae_mev"] for r in result.history]


def test_ema_decay_outside_0_1_is_refused():
    with pytest.raises(ConfigError, match="ema_decay"):
        FinetuneConfig(out="x", ema_decay=1.0)


def test_anneal_runs_every_epoch_and_cools_the_lr_down(qm9_small, tmp_path, monkeypatch):
    """patience 1 would stop a plateau run early; with anneal the budget of 6 epochs runs
    out, constant lr for the first half, then down a half cosine towards lr * FLOOR."""
    result = _run(qm9_small, tmp_path, monkeypatch, anneal=0.5, patience=1)
    lrs = [row["lr"] for row in result.history]
    assert len(lrs) == 6
    assert lrs[:3] == pytest.approx([1e-2] * 3)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False))
    assert lrs[-1] < 1e-2 * 0.2 and lrs[-1] >= 1e-2 * FLOOR
    logged = min(row["val_mae_mev"] for row in result.history)
    assert result.metrics["best_val_mae_mev"] == pytest.approx(logged, rel=1e-4)


def test_anneal_outside_0_1_is_refused():
    with pytest.raises(ConfigError, match="anneal"):
        FinetuneConfig(out="x", anneal=1.5)
