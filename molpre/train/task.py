"""The Lightning side of finetuning: the task module and its two callbacks.

``EnergyTask`` trains an EnergyModel on the weighted energy (+ forces) loss, optionally with
the L2-SP penalty, and reports ``train_mae_mev`` / ``val_mae_mev`` per epoch. ``BestWeights``
keeps the weights of the best validation epoch in memory; ``MlflowEpochMetrics`` writes the
per-epoch metrics to the active MLflow run with the epoch as step.
"""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import torch

from molpre.data import keys
from molpre.models.energy import EnergyModel
from molpre.train.losses import l2sp_penalty, weighted_loss
from molpre.train.modes import trainable_parameters
from molpre.units import EV_TO_MEV


class EnergyTask(pl.LightningModule):
    """Finetune ``model``; ``reference`` (encoder weights w0) and ``alpha`` switch on L2-SP."""

    def __init__(
        self, model: EnergyModel, *, lr: float, weight_decay: float = 0.0,
        energy_weight: float = 1.0, forces_weight: float = 0.0, scale: float = 1.0,
        alpha: float = 0.0, reference: dict[str, torch.Tensor] | None = None, patience: int = 20,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.patience = lr, weight_decay, patience
        self.energy_weight, self.forces_weight, self.scale = energy_weight, forces_weight, scale
        self.alpha, self.reference = alpha, reference or {}
        self._abs = {"train": [], "val": []}
        self.latest: dict[str, float] = {}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch, compute_forces=self.forces_weight > 0)

    def _record(self, stage: str, out: dict, batch: dict) -> None:
        err = (out[keys.PREDICTED_ENERGY].detach() - batch[keys.ENERGY]).abs()
        self._abs[stage].append(err.double().cpu())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        terms = weighted_loss(out, batch, energy_weight=self.energy_weight,
                              forces_weight=self.forces_weight, scale=self.scale)
        loss = terms["loss"]
        if self.alpha > 0 and self.reference:
            loss = loss + l2sp_penalty(self.model.encoder.named_parameters(), self.reference,
                                       self.alpha).to(loss)
        self._record("train", out, batch)
        self.log("train_loss", loss.detach(), batch_size=int(batch[keys.NUM_GRAPHS]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._record("val", self.model(batch), batch)

    def _epoch_mae(self, stage: str) -> float:
        errs = self._abs[stage]
        self._abs[stage] = []
        return float(torch.cat(errs).mean()) * EV_TO_MEV if errs else math.nan

    def on_validation_epoch_end(self) -> None:
        """Runs after the epoch's last training batch: both MAEs of this epoch are complete."""
        val = self._epoch_mae("val")
        if self.trainer.sanity_checking:
            return
        self.latest = {"train_mae_mev": self._epoch_mae("train"), "val_mae_mev": val}
        self.log_dict(self.latest, prog_bar=True)

    def configure_optimizers(self):
        params = trainable_parameters(self.model)
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, self.patience // 3)
        )
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val_mae_mev"}}


class BestWeights(pl.Callback):
    """Keep a copy of the weights at the best ``val_mae_mev`` (restore with :meth:`restore`)."""

    def __init__(self) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, task: EnergyTask) -> None:
        value = task.latest.get("val_mae_mev", math.inf)
        if not trainer.sanity_checking and value < self.best:
            self.best, self.best_epoch = value, trainer.current_epoch + 1
            self.state = copy.deepcopy(task.model.state_dict())

    def restore(self, model: torch.nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


class MlflowEpochMetrics(pl.Callback):
    """Log ``train_mae_mev``, ``val_mae_mev`` and ``lr`` to the active MLflow run each epoch."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, task: EnergyTask) -> None:
        import mlflow

        if trainer.sanity_checking or not task.latest:
            return
        metrics = dict(task.latest)
        metrics["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        epoch = trainer.current_epoch + 1
        self.history.append({"epoch": epoch, **metrics})
        if mlflow.active_run() is not None:
            mlflow.log_metrics({self.prefix + k: v for k, v in metrics.items()}, step=epoch)
