"""A cosine cooldown of the learning rate at the end of a pretraining or finetuning run.

A constant step size leaves the weights wherever the gradient noise of the last batches put
them. ``train.anneal = f`` lowers the step size over the last fraction ``f`` of *this* run's
budget (what was left of ``train.max_time_s`` and/or ``train.max_steps`` when it started or
resumed) along half a cosine, from ``train.lr`` to ``train.lr * FLOOR``. Progress is the larger
of the time and step fractions used, so whichever budget ends the run also ends the cooldown.
``f = 0`` (the default) keeps the step size constant. A finetuning run budgets epochs, not
steps: it passes ``total_steps`` (epochs x batches an epoch).
"""

from __future__ import annotations

import math
import time

import lightning as L
from lightning.pytorch.callbacks import Timer

#: the step size at the end of a cooldown, as a fraction of ``train.lr``
FLOOR = 0.01


def anneal_factor(progress: float, anneal: float, floor: float = FLOOR) -> float:
    """The step-size multiplier at ``progress`` in [0, 1] of a run that cools down over its
    last fraction ``anneal``: 1 before the cooldown, then half a cosine down to ``floor``."""
    if anneal <= 0.0:
        return 1.0
    start = 1.0 - anneal
    if progress <= start:
        return 1.0
    q = min(1.0, (progress - start) / anneal)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * q))


class LrAnneal(L.Callback):
    """Set every optimizer group's lr to ``base_lr * anneal_factor(progress)`` before each
    training batch and log it as ``train/lr``. The budget is measured from train start
    (after a resume has restored the trainer's timer and step), not from step 0."""

    def __init__(self, base_lr: float, anneal: float, floor: float = FLOOR,
                 total_steps: int | None = None):
        self.base_lr, self.anneal, self.floor = float(base_lr), float(anneal), float(floor)
        self.total_steps = total_steps
        self._step0 = 0
        self._t0 = 0.0
        self._seconds: float | None = None
        self.lr = self.base_lr

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step0 = trainer.global_step
        self._t0 = time.monotonic()
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        remaining = timer.time_remaining("train") if timer is not None else None
        self._seconds = remaining if remaining and remaining > 0 else None

    def progress(self, trainer: L.Trainer) -> float:
        """Fraction in [0, 1] of this run's budget spent (time or steps, the larger)."""
        fractions = [0.0]
        if self._seconds:
            fractions.append((time.monotonic() - self._t0) / self._seconds)
        last = self.total_steps or (trainer.max_steps if trainer.max_steps and trainer.max_steps > 0
                                   else None)
        if last:
            left = last - self._step0
            fractions.append((trainer.global_step - self._step0) / max(left, 1))
        return min(1.0, max(fractions))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lr = self.base_lr * anneal_factor(self.progress(trainer), self.anneal, self.floor)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.log("train/lr", self.lr, on_step=True, on_epoch=False, batch_size=1)
