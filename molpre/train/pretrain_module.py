"""The pretraining LightningModule: encoder + objectives, one corrupted forward pass per batch.

A batch is view-major (see :func:`molpre.data.shard_stream.collate_views`): with the
contrastive objective it holds two conformers of each of B molecules (2B graphs). The
configured objectives (:mod:`molpre.train.objectives`) live in a ``ModuleDict`` (their heads
are saved with the module); each corrupting objective corrupts the batch in turn and the
encoder runs once on the result; the ``clean`` objectives (a cheap level's energy and forces)
get one more encoder pass on the uncorrupted batch. The loss is the sum of their weighted
losses. Validation (held-out shards) logs every objective's loss on fixed corruptions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from molpre.data import keys
from molpre.models.compiled_forces import ForceGraph
from molpre.models.encoder import Encoder, EncoderConfig
from molpre.models.pretrain_heads import encoder_dims
from molpre.train import objectives as obj
from molpre.train.objectives.cheap import GRADIENT


def _max_rss_mb() -> float:
    """This process's peak resident memory, MB (Linux reports kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_objectives(sections: Mapping[str, Mapping[str, Any]], encoder: Encoder
                     ) -> torch.nn.ModuleDict:
    """The objectives with weight > 0 of an ``objectives`` config section, in config order."""
    features, channels = encoder_dims(encoder, encoder.config.cutoff)
    dims = obj.EncoderDims(features, channels)
    built = {name: obj.build_objective(name, sections[name], dims)
             for name in obj.active(sections)}
    for objective in built.values():
        objective.bind(built)
    return torch.nn.ModuleDict(built)


class PretrainModule(L.LightningModule):
    """Self-supervised pretraining of :class:`molpre.models.encoder.Encoder`.

    ``encoder_config``: EncoderConfig as a dict; ``objectives``: ``{name: {"weight": w,
    **options}}`` (the pretrain config's section); both plain dicts saved as hyperparameters,
    so a checkpoint rebuilds the module (and loads with ``weights_only=True``).
    """

    def __init__(self, encoder_config: dict[str, Any], objectives: dict[str, dict[str, Any]],
                 lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = Encoder(EncoderConfig.from_dict(dict(encoder_config)))
        self.force_graph = ForceGraph()  # cheap forces without a double backward, when compiled
        self.objectives = build_objectives(objectives, self.encoder)
        if not len(self.objectives):
            raise ValueError("no pretraining objective has a weight > 0")
        self.views = obj.views_needed(self.objectives.values())
        self.label_level: str | None = None  # the labeled corpus's level (set by pretrain())
        self.loss_ema: float | None = None
        self._last_step_at: float | None = None

    def losses(self, batch: dict[str, torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every ``<objective>_loss``, every ``<objective>_<metric>`` and the weighted total
        ``loss``: the corrupting objectives on one encoder pass over the corrupted batch, the
        clean ones on one pass over ``batch`` itself."""
        corrupting = {n: o for n, o in self.objectives.items() if not o.clean}
        clean = {n: o for n, o in self.objectives.items() if o.clean}
        terms: dict[str, torch.Tensor] = {}
        if corrupting:
            out = self.encoder(obj.corrupt(batch, corrupting.values(), generator))
            terms.update(self._terms(corrupting, out))
        if clean:
            terms.update(self._terms(clean, self._clean_pass(batch, clean.values())))
        total = sum(o.weight * terms[f"{n}_loss"] for n, o in self.objectives.items())
        terms["loss"] = total
        return terms

    def _clean_pass(self, batch: dict[str, torch.Tensor], objectives) -> dict[str, torch.Tensor]:
        """Encoder outputs of the uncorrupted batch; positions differentiable when an
        objective takes their gradient (grad mode forced on, also in validation)."""
        if not any(o.needs_positions_grad for o in objectives):
            return self.encoder(dict(batch))
        compiled = self._compiled_clean_pass(batch, objectives)
        if compiled is not None:
            return compiled
        pos = batch[keys.POSITIONS].detach().requires_grad_(True)
        with torch.enable_grad():
            return self.encoder({**batch, keys.POSITIONS: pos})

    def _compiled_clean_pass(self, batch: dict[str, torch.Tensor], objectives):
        """The clean pass and the cheap energy's position gradient from one compiled graph
        (molpre.models.compiled_forces: no double backward), where the encoder compiles and
        a forces objective takes that gradient; else None."""
        forces = next((o for o in objectives if hasattr(o, "energy_head")), None)
        if forces is None:
            return None
        head, _ = forces.energy_head()
        result = self.force_graph.encode(self.encoder, head, batch, keep_graph=self.training)
        if result is None:
            return None
        out, gradient = result
        out[GRADIENT] = {id(head): gradient}
        return out

    @staticmethod
    def _terms(objectives: dict, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each objective's loss and metrics on ``out`` (grad mode on for all of them when
        one differentiates through the positions: they may share a cached energy)."""
        terms: dict[str, torch.Tensor] = {}
        grad = any(o.needs_positions_grad for o in objectives.values())
        with torch.enable_grad() if grad else contextlib.nullcontext():
            for name, objective in objectives.items():
                loss, metrics = objective.loss(out)
                terms[f"{name}_loss"] = loss
                terms.update({f"{name}_{key}": value for key, value in metrics.items()})
        return terms

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Every objective's loss on a held-out batch, corrupted the same way each time."""
        generator = torch.Generator().manual_seed(batch_idx)
        terms = self.losses(batch, generator)
        graphs = int(batch[keys.NUM_GRAPHS])
        for name, value in terms.items():
            self.log(f"val/{name}", value.detach(), batch_size=graphs, prog_bar=name == "loss")

    def transferable(self) -> tuple[dict[str, dict], dict]:
        """``(heads, meta)`` an encoder checkpoint carries for finetuning: the energy head of
        a cheap level (``cheap_energy``'s, else ``cheap_forces``') with its scale (eV per
        unit output) and the pretraining objectives (so a control can rebuild step 0)."""
        meta = {"objectives": {n: dict(s) for n, s in self.hparams.objectives.items()}}
        for name in ("cheap_energy", "cheap_forces"):
            objective = self.objectives[name] if name in self.objectives else None
            head = getattr(objective, "head", None)
            if head is not None:
                scale = objective.options.scale if name == "cheap_energy" else 1.0
                meta["energy_head"] = {"objective": name, "scale": float(scale or 1.0),
                                       "level": self.label_level}
                return {"energy": head.atomic.state_dict()}, meta
        return {}, meta

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        graphs = int(batch[keys.NUM_GRAPHS])
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=graphs, prog_bar=name == "loss")
        now = time.perf_counter()
        if self._last_step_at is not None:
            seconds = max(now - self._last_step_at, 1e-9)
            self.log("train/conformers_per_s", graphs / seconds, batch_size=1)
            self.log("train/steps_per_s", 1.0 / seconds, batch_size=1)
            self.log("train/max_rss_mb", _max_rss_mb(), batch_size=1)  # streaming: stays flat
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
