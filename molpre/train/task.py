"""The Lightning side of finetuning: the task module and its two callbacks.

``PropertyTask`` trains a PropertyModel on the weighted per-target (+ forces) loss, optionally
with the L2-SP penalty, and reports each target's train/val MAE per epoch with its unit
(``train_mae_mev`` / ``val_mae_mev`` for the energy, ``val_mae_gap_mev``, ``val_mae_dipole_debye``,
``val_forces_mae_mev_per_a`` when forces are fitted). ``BestWeights``
keeps the weights of the best validation epoch in memory; ``MlflowEpochMetrics`` writes the
per-epoch metrics to the active MLflow run with the epoch as step.
"""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from molpre.data import keys
from molpre.models.energy import PropertyModel
from molpre.targets import get_target, monitor_name
from molpre.train.losses import l2sp_penalty, weighted_loss
from molpre.train.modes import trainable_parameters


class PropertyTask(pl.LightningModule):
    """Finetune ``model`` on every target it carries (one weighted loss term each).

    ``weights``/``scales``: per-target loss weight and spread (molpre units; default 1);
    forces are weighed by ``forces_weight`` in units of the energy's scale; ``penalty`` (``mse``
    or ``l1``) is what every term averages. ``reference`` (encoder weights w0)
    and ``alpha`` switch on L2-SP. :attr:`monitor` is the metric that picks the best epoch:
    the one target's validation MAE, or ``val_score`` (sum of val MAE / scale, plus
    ``forces_weight`` x the forces' val MAE / the energy's scale, as in the loss) for several
    targets or when forces are fitted. With forces, a handful of validation molecules still
    gives 3 x atoms numbers each: a 5-molecule energy MAE alone stopped demo runs at step 0.
    """

    def __init__(
        self, model: PropertyModel, *, lr: float, weight_decay: float = 0.0,
        forces_weight: float = 0.0,
        weights: dict[str, float] | None = None, scales: dict[str, float] | None = None,
        alpha: float = 0.0, reference: dict[str, torch.Tensor] | None = None, patience: int = 20,
        plateau: bool = True, penalty: str = "mse",
    ) -> None:
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.patience = lr, weight_decay, patience
        self.plateau = plateau  # False: a callback (molpre.train.anneal.LrAnneal) sets the lr
        self.forces_weight, self.penalty = forces_weight, penalty
        self.specs = [get_target(t) for t in model.targets]
        self.forces = get_target("forces")
        self.weights = {s.name: (weights or {}).get(s.name, 1.0) for s in self.specs}
        self.scales = {s.name: (scales or {}).get(s.name, 1.0) for s in self.specs}
        self.alpha, self.reference = alpha, reference or {}
        self._abs = {stage: {s.name: [] for s in self.specs} for stage in ("train", "val")}
        self.latest: dict[str, float] = {}

    @property
    def monitor(self) -> str:
        """Name of the validation metric that selects epochs (lower is better)."""
        return "val_score" if self.forces_weight > 0 else monitor_name(self.specs)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch, compute_forces=self.forces_weight > 0)

    def _record(self, stage: str, out: dict, batch: dict) -> None:
        specs = self.specs + ([self.forces] if self.forces_weight > 0
                              and self.forces.output_key in out else [])
        for spec in specs:
            errors = spec.kind.abs_errors(out[spec.output_key].detach(), batch[spec.label_key])
            self._abs[stage].setdefault(spec.name, []).append(errors.double().cpu())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        terms = weighted_loss(out, batch, forces_weight=self.forces_weight, targets=self.weights,
                              weights=self.weights, scales=self.scales, penalty=self.penalty)
        loss = terms["loss"]
        if self.alpha > 0 and self.reference:
            loss = loss + l2sp_penalty(self.model.encoder.named_parameters(), self.reference,
                                       self.alpha).to(loss)
        self._record("train", out, batch)
        self.log("train_loss", loss.detach(), batch_size=int(batch[keys.NUM_GRAPHS]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._record("val", self(batch), batch)

    def _epoch_mae(self, stage: str) -> dict[str, float]:
        """``{target: MAE in molpre units}`` of the epoch (and reset)."""
        maes = {name: float(torch.cat(errs).mean()) if errs else math.nan
                for name, errs in self._abs[stage].items()}
        self._abs[stage] = {s.name: [] for s in self.specs}
        return maes

    def on_validation_epoch_end(self) -> None:
        """Runs after the epoch's last training batch: both MAEs of this epoch are complete."""
        val = self._epoch_mae("val")
        if self.trainer.sanity_checking:
            return
        train = self._epoch_mae("train")
        latest = {}
        for spec in self.specs + ([self.forces] if self.forces.name in val else []):
            latest[spec.metric_name("mae", "train_")] = train.get(spec.name, math.nan) * spec.metric_factor
            latest[spec.metric_name("mae", "val_")] = val[spec.name] * spec.metric_factor
        if self.monitor == "val_score":
            latest["val_score"] = sum(val[s.name] / self.scales[s.name] for s in self.specs)
            if self.forces.name in val:
                latest["val_score"] += (self.forces_weight * val[self.forces.name]
                                        / self.scales.get("energy", 1.0))
        self.latest = latest
        self.log_dict(self.latest, prog_bar=True)

    def configure_optimizers(self):
        params = trainable_parameters(self.model)
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if not self.plateau:
            return optimizer
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, self.patience // 3)
        )
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}


#: The first version's name (an energy-only PropertyTask).
EnergyTask = PropertyTask


class AveragedWeights(EMAWeightAveraging):
    """Lightning's EMA of the task's weights (``decay`` per optimizer step), swapped in for
    every validation epoch and copied into the model when training ends."""

    def averaged_model_state(self) -> dict[str, torch.Tensor]:
        """A copy of the averaged ``task.model`` weights. ``_average_model`` is
        WeightAveraging's AveragedModel of the task, built in ``setup`` (no public accessor;
        an AttributeError here means Lightning renamed it, not a silent raw-weight fallback)."""
        return copy.deepcopy(self._average_model.module.model.state_dict())


class BestWeights(pl.Callback):
    """Keep a copy of the weights at the best ``task.monitor`` (restore with :meth:`restore`).

    With ``averaged`` (an :class:`AveragedWeights`), validation scored the averaged weights,
    so those are the ones kept (the task holds the raw weights again by ``on_validation_end``).
    """

    def __init__(self, averaged: AveragedWeights | None = None) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None
        self.averaged = averaged

    def on_validation_end(self, trainer: pl.Trainer, task: PropertyTask) -> None:
        value = task.latest.get(task.monitor, math.inf)
        if not trainer.sanity_checking and value < self.best:
            self.best, self.best_epoch = value, trainer.current_epoch + 1
            self.state = (self.averaged.averaged_model_state() if self.averaged is not None
                          else copy.deepcopy(task.model.state_dict()))

    def restore(self, model: torch.nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


#: A validation error is also logged clipped at this many times the target baseline's
#: validation error (``val_mae_mev_clipped``): one diverged run (a 2.67e6 meV validation MAE
#: was seen) would otherwise flatten every other line of a chart of many runs.
CLIP_FACTOR = 2.0


def clipped_name(metric: str) -> str:
    """``val_mae_mev`` -> ``val_mae_mev_clipped``."""
    return f"{metric}_clipped"


def clipped(metrics: dict[str, float], caps: dict[str, float]) -> dict[str, float]:
    """``{clipped_name(k): min(v, cap)}`` for each metric with a cap (NaN: the cap)."""
    out = {}
    for name, cap in caps.items():
        if name in metrics:
            value = float(metrics[name])
            out[clipped_name(name)] = min(value, cap) if value == value else cap
    return out


class MlflowEpochMetrics(pl.Callback):
    """Log the task's per-epoch metrics (``train_mae_mev``, ``val_mae_gap_mev``, ...) and ``lr``
    to the active MLflow run each epoch; ``caps``: validation metrics also logged clipped
    (:func:`clipped`), not kept in :attr:`history`."""

    def __init__(self, prefix: str = "", caps: dict[str, float] | None = None) -> None:
        self.prefix = prefix
        self.caps = dict(caps or {})
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, task: PropertyTask) -> None:
        import mlflow

        if trainer.sanity_checking or not task.latest:
            return
        metrics = dict(task.latest)
        metrics["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        epoch = trainer.current_epoch + 1
        self.history.append({"epoch": epoch, **metrics})
        if mlflow.active_run() is not None:
            logged = {**metrics, **clipped(metrics, self.caps)}
            mlflow.log_metrics({self.prefix + k: v for k, v in logged.items()}, step=epoch)
