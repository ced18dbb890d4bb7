"""Lightning callbacks of pretraining: collapse watch, linear-probe proxy, checkpoints.

Both watches run the frozen encoder (eval mode, no grad) on fixed batches, log to the
trainer's logger (MLflow: metrics ``collapse/*`` and ``probe/mae``) and raise the run tag
``collapse=suspected`` with a reason. They compute on every DDP rank (the weights are the
same everywhere, so every rank reaches the same decision) and write files on rank 0 only.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from molpre.data import keys
from molpre.models.encoder import save_encoder
from molpre.train import monitors

log = logging.getLogger(__name__)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """``batch`` with every tensor on ``device`` (other values as they are)."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def embed(encoder: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Pooled embeddings [sum B, F] (on CPU) of CPU ``batches`` by the frozen encoder, run on
    the encoder's device."""
    was_training = encoder.training
    device = next(encoder.parameters()).device
    encoder.eval()
    try:
        return torch.cat([encoder(to_device(b, device))[keys.GRAPH_EMBEDDING].float().cpu()
                          for b in batches])
    finally:
        encoder.train(was_training)


def composition(batches: list[dict[str, torch.Tensor]]) -> np.ndarray:
    """Element counts [sum B, 119] of each molecule in ``batches`` (the atomref design matrix)."""
    rows = []
    for b in batches:
        counts = torch.zeros(int(b[keys.NUM_GRAPHS]), keys.NUM_ELEMENT_TOKENS, dtype=torch.float64)
        counts.index_put_((b[keys.BATCH], b[keys.ATOMIC_NUMBERS]),
                          torch.ones_like(b[keys.BATCH], dtype=torch.float64), accumulate=True)
        rows.append(counts.numpy())
    return np.concatenate(rows)


def probe_features(encoder: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> np.ndarray:
    """Extensive probe features [sum B, F + 119]: summed atom features and element counts.

    Energies are extensive, so the probe regresses them on the *sum* of per-atom features
    (mean embedding x atom count) next to the composition, i.e. an atomref fit plus a linear
    correction in the encoder's features.
    """
    pooled = embed(encoder, batches).double()
    counts = torch.cat([b[keys.NUM_ATOMS].double() for b in batches]).unsqueeze(-1)
    return np.concatenate([(pooled * counts).numpy(), composition(batches)], axis=1)


def raise_alarm(trainer: L.Trainer, reason: str) -> None:
    """Warn and tag the MLflow run collapse=suspected (with the reason)."""
    warnings.warn(f"collapse suspected: {reason}", RuntimeWarning, stacklevel=2)
    logger = trainer.logger
    if trainer.is_global_zero and hasattr(logger, "run_id") and logger.run_id:
        logger.experiment.set_tag(logger.run_id, "collapse", "suspected")
        logger.experiment.set_tag(logger.run_id, "collapse.reason", reason[:500])


def log_metrics(trainer: L.Trainer, metrics: dict[str, float]) -> None:
    if trainer.logger is not None:
        trainer.logger.log_metrics(metrics, step=trainer.global_step)


class CollapseWatch(L.Callback):
    """Every ``every_n_steps`` and each epoch end: collapse stats of a fixed two-view batch."""

    def __init__(self, batch: dict[str, torch.Tensor], views: int,
                 thresholds: monitors.CollapseThresholds, every_n_steps: int = 50,
                 stop: bool = False):
        self.batch, self.views, self.thresholds = batch, views, thresholds
        self.every, self.stop = max(1, every_n_steps), stop
        self.last: dict[str, float] = {}
        self.flagged = False

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
        z = embed(pl_module.encoder, [self.batch])
        parts = z.chunk(self.views) if self.views > 1 else (z, None)
        self.last = monitors.collapse_stats(parts[0], parts[1])
        log_metrics(trainer, {f"collapse/{k}": v for k, v in self.last.items()})
        reasons = self.thresholds.check(self.last)
        if reasons:
            self.flagged = True
            raise_alarm(trainer, "; ".join(reasons))
            if self.stop:
                trainer.should_stop = True
        return reasons

    def on_train_start(self, trainer, pl_module) -> None:
        self.check(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.check(trainer, pl_module)


class ProbeProxy(L.Callback):
    """Every ``every_n_steps``: ridge probe MAE on frozen embeddings; keeps the best encoder.

    The best encoder by probe MAE is written with save_encoder to ``encoder_path``, its meta
    marking step, MAE and target. A :class:`monitors.ShortcutDetector` raises the alarm when
    the pretraining loss falls while the probe MAE stalls.
    """

    def __init__(self, batches: list[dict[str, torch.Tensor]], target: np.ndarray,
                 encoder_path: Path, *, every_n_steps: int = 100, holdout: float = 0.2,
                 detector: monitors.ShortcutDetector | None = None, target_name: str = ""):
        self.batches, self.target = batches, np.asarray(target, dtype=np.float64)
        self.path, self.every, self.holdout = Path(encoder_path), max(1, every_n_steps), holdout
        self.detector = detector or monitors.ShortcutDetector()
        self.target_name = target_name
        self.best_mae, self.best_step = float("inf"), -1
        self.history: list[tuple[int, float]] = []

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        x = probe_features(pl_module.encoder, self.batches)
        mae = monitors.ridge_probe(x, self.target, holdout=self.holdout)
        step = trainer.global_step
        if not self.history:  # what composition alone gives: the bar the encoder must clear
            base = monitors.ridge_probe(composition(self.batches), self.target, holdout=self.holdout)
            log_metrics(trainer, {"probe/composition_mae": base})
        self.history.append((step, mae))
        log_metrics(trainer, {"probe/mae": mae})
        if mae < self.best_mae:
            self.best_mae, self.best_step = mae, step
            log_metrics(trainer, {"probe/best_mae": mae})
            if trainer.is_global_zero:
                write_encoder(pl_module, self.path, self.meta())
        loss = getattr(pl_module, "loss_ema", None)
        if loss is not None:
            reason = self.detector.update(loss, mae)
            if reason:
                raise_alarm(trainer, reason)
        return mae

    def meta(self) -> dict:
        return {"selected_by": "probe_mae", "step": self.best_step, "probe_mae": self.best_mae,
                "probe_target": self.target_name}

    def on_train_start(self, trainer, pl_module) -> None:
        if not self.history:
            self.evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.history or self.history[-1][0] != trainer.global_step:
            self.evaluate(trainer, pl_module)
        if trainer.is_global_zero and trainer.logger is not None and self.best_step >= 0:
            trainer.logger.experiment.set_tag(trainer.logger.run_id, "best_step",
                                              str(self.best_step))

    def state_dict(self) -> dict:
        return {"best_mae": self.best_mae, "best_step": self.best_step,
                "history": [list(h) for h in self.history],
                "detector": [list(h) for h in self.detector.history]}

    def load_state_dict(self, state: dict) -> None:
        self.best_mae, self.best_step = state["best_mae"], state["best_step"]
        self.history = [tuple(h) for h in state["history"]]
        self.detector.history = [tuple(h) for h in state["detector"]]


def write_encoder(module: torch.nn.Module, path: Path, meta: dict) -> None:
    """save_encoder to a temporary file beside ``path``, then rename: never a torn file.
    ``module``: the pretraining module (its encoder, plus the heads and meta it marks
    transferable) or a bare encoder."""
    encoder = getattr(module, "encoder", module)
    heads, extra = module.transferable() if hasattr(module, "transferable") else ({}, {})
    tmp = path.with_name(f".{path.name}.tmp")
    save_encoder(encoder, tmp, meta={**extra, **meta}, heads=heads)
    os.replace(tmp, path)


def save_checkpoint_atomically(trainer: L.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` into a temporary file beside ``path``, then rename.

    Called on every rank (Lightning's save has a barrier; rank 0 writes).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(tmp, weights_only=False)  # full state: optimizer, loops, callbacks
    if trainer.is_global_zero:
        os.replace(tmp, path)


def replace_with_link(source: Path, target: Path) -> None:
    """Make ``target`` the same file as ``source`` (hard link, else copy), atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class Checkpoints(Checkpoint):
    """OUTDIR/last.ckpt, written atomically: every ``every_n_steps`` steps, when a stop is
    requested (:meth:`catch_sigint`: Ctrl-C ends training after the current step) and at
    train end; plus the encoder at train end when no probe selected one.

    Periodic checkpoints are also kept as OUTDIR/checkpoints/step=NNNNNNNN.ckpt, the newest
    ``keep`` of them (0: only last.ckpt); last.ckpt is a hard link to the newest, so it
    costs no extra disk.
    """

    def __init__(self, outdir: Path, every_n_steps: int, keep: int = 2, has_probe: bool = False):
        self.outdir, self.every = Path(outdir), max(1, int(every_n_steps))
        self.keep, self.has_probe = max(0, int(keep)), has_probe
        self.stop_requested = False
        self.stopped_at: int | None = None
        self.last_saved: int | None = None

    @property
    def last(self) -> Path:
        return self.outdir / "last.ckpt"

    def save(self, trainer: L.Trainer, periodic: bool) -> None:
        step = trainer.global_step
        if periodic and self.keep > 0:
            folder = self.outdir / "checkpoints"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"step={step:08d}.ckpt"
            save_checkpoint_atomically(trainer, path)
            if trainer.is_global_zero:
                replace_with_link(path, self.last)
                self.prune(folder)
        else:
            save_checkpoint_atomically(trainer, self.last)
        self.last_saved = step

    def prune(self, folder: Path) -> None:
        """Delete all but the newest ``keep`` periodic checkpoints."""
        for old in sorted(folder.glob("step=*.ckpt"))[:-self.keep]:
            old.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.stop_requested and self.stopped_at is None:
            self.save(trainer, periodic=False)
            self.stopped_at = trainer.global_step
            trainer.should_stop = True
        elif trainer.global_step % self.every == 0 and self.last_saved != trainer.global_step:
            self.save(trainer, periodic=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.stopped_at is None and self.last_saved != trainer.global_step:
            self.save(trainer, periodic=False)
        if trainer.is_global_zero and not self.has_probe:
            meta = {"selected_by": "last", "step": trainer.global_step}
            write_encoder(pl_module, self.outdir / "encoder.pt", meta)

    @contextmanager
    def catch_sigint(self) -> Iterator[None]:
        """While inside: the first SIGINT requests a stop after the current step (the next
        one interrupts at once). Only in the main thread; elsewhere a no-op."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame) -> None:
            self.stop_requested = True
            signal.signal(signal.SIGINT, previous)
            print("\nstopping after this step (Ctrl-C again to abort at once) ...",
                  file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
