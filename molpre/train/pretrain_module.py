"""The pretraining LightningModule: encoder + heads, one corrupted forward pass per batch.

A batch is view-major (see :func:`molpre.data.shard_stream.collate_views`): with the
contrastive objective it holds two conformers of each of B molecules (2B graphs).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch

from molpre.data import keys
from molpre.models.encoder import Encoder, EncoderConfig
from molpre.models.pretrain_heads import PretrainHeads, encoder_dims
from molpre.train import objectives as obj


class PretrainModule(L.LightningModule):
    """Self-supervised pretraining of :class:`molpre.models.encoder.Encoder`.

    ``encoder_config``: EncoderConfig as a dict; ``objectives``: ObjectiveConfig as a dict;
    both saved as hyperparameters so a checkpoint rebuilds the module.
    """

    def __init__(self, encoder_config: dict[str, Any], objectives: dict[str, Any],
                 lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = Encoder(EncoderConfig.from_dict(dict(encoder_config)))
        self.objectives = obj.ObjectiveConfig(**objectives)
        features, channels = encoder_dims(self.encoder, self.encoder.config.cutoff)
        active = self.objectives.active()
        self.heads = PretrainHeads(
            features, channels, mask="mask" in active, contrast="contrast" in active,
            denoise="denoise" in active, proj_dim=self.objectives.proj_dim)
        self.loss_ema: float | None = None
        self._last_step_at: float | None = None

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Corrupt ``batch``, run the encoder once, return every loss term and metric."""
        cfg = self.objectives
        corrupted = obj.corrupt(batch, cfg)
        out = self.encoder(corrupted)
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=corrupted[keys.POSITIONS].device)
        if self.heads.mask is not None:
            logits = self.heads.mask(out[keys.NODE_FEATURES])
            target, mask = corrupted[keys.MASKED_TARGET], corrupted[keys.MASK]
            terms["mask_loss"], terms["mask_acc"] = obj.masked_atom_loss(logits, target, mask)
            terms["mask_baseline"] = frequency_baseline(target[mask])
            total = total + cfg.mask_weight * terms["mask_loss"]
        if self.heads.projection is not None:
            z1, z2 = obj.split_views(self.heads.projection(out[keys.GRAPH_EMBEDDING]), 2)
            terms["contrast_loss"] = obj.nt_xent(z1, z2, cfg.temperature)
            terms["pos_sim"], terms["neg_sim"] = obj.pair_similarity(z1.detach(), z2.detach())
            total = total + cfg.contrast_weight * terms["contrast_loss"]
        if self.heads.denoise is not None:
            pred = self.heads.denoise(out[keys.NODE_FEATURES], out[keys.NODE_VECTORS])
            terms["denoise_loss"] = obj.denoise_loss(pred, corrupted[keys.NOISE], cfg.noise_sigma)
            total = total + cfg.denoise_weight * terms["denoise_loss"]
        terms["loss"] = total
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        graphs = int(batch[keys.NUM_GRAPHS])
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=graphs, prog_bar=name == "loss")
        now = time.perf_counter()
        if self._last_step_at is not None:
            self.log("train/conformers_per_s", graphs / max(now - self._last_step_at, 1e-9),
                     batch_size=1)
        self._last_step_at = now
        loss = float(terms["loss"].detach())
        self.loss_ema = loss if self.loss_ema is None else 0.9 * self.loss_ema + 0.1 * loss
        return terms["loss"]

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                 weight_decay=self.hparams.weight_decay)


def frequency_baseline(target: torch.Tensor) -> torch.Tensor:
    """Accuracy of always guessing the most frequent element of ``target`` [M] (0-d)."""
    if target.numel() == 0:
        return torch.zeros(())
    return torch.bincount(target).max().float() / target.numel()
