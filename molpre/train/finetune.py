"""Finetune an energy model on labeled conformers: ``finetune(config) -> FinetuneResult``.

One call = one MLflow run (molpre.tracking): resolved config as params, dataset hash and
provenance as tags, step-0 and per-epoch train/val MAE (meV), test MAE/RMSE (meV, kcal/mol)
against the atomref-only baseline, parity.png, and the model as an MLflow pyfunc. OUT gets
``model.ckpt`` (rebuilds itself), ``model/`` (pyfunc directory), ``metrics.json`` and
``parity.png``. Safe to call many times in one process (each call seeds and cleans up).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molpre.data.atomref import fit_atomref
from molpre.data.datasets import LabeledData, load_labeled
from molpre.data.graph import atoms_to_sample, collate
from molpre.data.splits import Split, make_split, permutation_test_rows, read_ids, rows_matching
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.runtime import seed_everything
from molpre.train.config import FinetuneConfig
from molpre.train.evaluate import atomref_only, energy_metrics, parity_plot, predict_energies
from molpre.train.losses import snapshot
from molpre.train.modes import build_model, start_encoder

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """What a finetune produced; ``metrics`` holds test_/baseline_test_/val_ MAE and RMSE."""

    model: EnergyModel
    metrics: dict[str, float]
    history: list[dict[str, float]]
    config: dict[str, Any]
    split_sizes: dict[str, int]
    out: Path
    checkpoint: Path
    model_dir: Path | None = None
    run_id: str | None = None
    model_uri: str | None = None
    alpha: float | None = None
    frozen: list[str] = field(default_factory=list)


def split_data(config: FinetuneConfig, data: LabeledData) -> Split:
    """The config's split of ``data`` (test ids, the permutation protocol, or a fraction)."""
    test_rows = None
    if config.test_ids:
        test_rows = rows_matching(read_ids(config.test_ids), data.mol_ids, data.groups)
    elif config.test_first:
        test_rows = permutation_test_rows(len(data), config.test_first, config.split_seed)
    return make_split(
        data.groups, seed=config.seed, split_seed=config.split_seed,
        test_fraction=config.test_fraction, test_rows=test_rows, budget=config.budget,
        val_fraction=config.val_fraction,
    )


def _samples(data: LabeledData, cutoff: float, forces: bool) -> list[dict[str, torch.Tensor]]:
    return [
        atoms_to_sample(a, cutoff, energy=float(e),
                        forces=data.forces[i] if forces and data.forces else None)
        for i, (a, e) in enumerate(zip(data.atoms, data.energy, strict=True))
    ]


def _scales(train: LabeledData, atomref: dict[int, float]) -> tuple[float, float]:
    """(per-molecule, per-atom) spread of training energies after atomref, eV."""
    numbers = [a.numbers for a in train.atoms]
    resid = train.energy - atomref_only(numbers, atomref)
    per_atom = resid / np.array([len(z) for z in numbers])
    return max(float(np.std(resid)), 1e-3), max(float(np.std(per_atom)), 1e-4)


def _loader(samples: list, batch_size: int, shuffle: bool, seed: int):
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(samples, batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                      generator=generator)


def _fit(config, model, train, val, scale, alpha, reference, minutes, prefix):
    """Train ``model`` in place (best-validation weights restored); returns (best, history)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping

    from molpre.train.task import BestWeights, EnergyTask, MlflowEpochMetrics

    task = EnergyTask(model, lr=config.lr, weight_decay=config.weight_decay,
                      energy_weight=config.energy_weight, forces_weight=config.forces_weight,
                      scale=scale, alpha=alpha, reference=reference, patience=config.patience)
    best, epochs = BestWeights(), MlflowEpochMetrics(prefix)
    trainer = pl.Trainer(
        max_epochs=config.epochs, max_time=timedelta(minutes=minutes) if minutes else None,
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=config.progress, inference_mode=False,
        num_sanity_val_steps=0, default_root_dir=config.out,
        callbacks=[best, epochs, EarlyStopping("val_mae_mev", patience=config.patience)],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*(num_workers|does not have many workers).*")
        trainer.fit(task, _loader(train, config.batch_size, True, config.seed),
                    _loader(val, 256, False, config.seed))
    best.restore(model)
    return best.best, epochs.history


def _train(config, model, train, val, scale) -> tuple[float | None, list[dict]]:
    """Fit once (or once per alpha for ``prior``), keep the best validation model."""
    import mlflow

    alphas = [0.0]
    if config.mode == "prior":
        alphas = [config.prior_alpha] if config.prior_alpha is not None else list(config.prior_alphas)
    reference = snapshot(model.encoder) if config.mode == "prior" else None
    start = copy.deepcopy(model.state_dict())
    minutes = config.max_minutes / len(alphas) if config.max_minutes else None
    chosen = (np.inf, None, None, [])
    for alpha in alphas:
        model.load_state_dict(start)
        seed_everything(config.seed)
        prefix = f"alpha_{alpha:g}." if len(alphas) > 1 else ""
        val_mae, history = _fit(config, model, train, val, scale, alpha, reference, minutes, prefix)
        if len(alphas) > 1 and np.isfinite(val_mae):
            mlflow.log_metric("alpha_search.val_mae_mev", val_mae, step=alphas.index(alpha))
        if val_mae < chosen[0] or chosen[1] is None:
            chosen = (val_mae, alpha, copy.deepcopy(model.state_dict()), history)
    model.load_state_dict(chosen[2])
    if len(alphas) > 1:
        for row in chosen[3]:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
    return (chosen[1] if config.mode == "prior" else None), chosen[3]


def _evaluate(model, parts, atomref, out: Path, label: str = "") -> dict[str, float]:
    """Val and test metrics, the atomref baseline on test, and the parity plot (titled
    ``label``: run, mode and label count, then the test MAE)."""
    (val, val_samples), (test, test_samples) = parts
    metrics = energy_metrics(predict_energies(model, val_samples), val.energy, "best_val_")
    base = atomref_only([a.numbers for a in test.atoms], atomref)
    known = ~np.isnan(base)  # test molecules with an element never seen in training are skipped
    pred = predict_energies(model, [s for s, k in zip(test_samples, known, strict=True) if k])
    metrics.update(energy_metrics(pred, test.energy[known], "test_"))
    metrics.update(energy_metrics(base[known], test.energy[known], "baseline_test_"))
    metrics["test_n"], metrics["test_n_unsupported"] = int(known.sum()), int((~known).sum())
    if known.any():
        title = (f"{label}\ntest MAE {metrics['test_mae_mev']:.1f} meV "
                 f"({metrics['test_mae_kcal']:.2f} kcal/mol), {int(known.sum())} molecules")
        parity_plot(test.energy[known], pred, base[known], out / "parity.png", title=title)
    return metrics


def finetune(config: FinetuneConfig | dict, data: LabeledData | None = None) -> FinetuneResult:
    """Run one finetune (see the module docstring); ``data`` skips re-reading ``config.data``."""
    import mlflow

    from molpre.models.pyfunc import log_pyfunc_model, save_pyfunc_model
    from molpre.tracking import start_run

    config = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = data if data is not None else load_labeled(config.data, config.target, config.unit,
                                                      config.forces)
    split = split_data(config, data)
    train, val, test = (data.subset(split.train), data.subset(split.val), data.subset(split.test))
    atomref = fit_atomref([a.numbers for a in train.atoms], train.energy)
    scale, atom_scale = _scales(train, atomref)
    encoder = start_encoder(config)
    model = build_model(config, encoder, atomref, atom_scale)
    cutoff = float(encoder.config.cutoff)
    samples = [_samples(d, cutoff, config.forces) for d in (train, val, test)]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = config.resolved()
    labels = len(split.train) + len(split.val)
    if resolved.get("budget") is None:  # log the label count as `budget` even when implicit
        resolved["budget"] = labels
    name = config.run_name or f"finetune-{config.mode}"
    with start_run(name, resolved,
                   experiment=config.experiment, dataset_hashes={"labels": data.sha256}) as run:
        mlflow.log_params({f"split.{k}": v for k, v in split.sizes().items()})
        step0 = energy_metrics(predict_energies(model, samples[1]), val.energy)["mae_mev"]
        mlflow.log_metric("val_mae_mev", step0, step=0)
        alpha, history = _train(config, model, samples[0], samples[1], scale)
        metrics = {"step0_val_mae_mev": step0, **_evaluate(model, [(val, samples[1]), (test, samples[2])], atomref, out,
                                                     f"{name}: {config.mode}, {labels} labels")}
        if alpha is not None:
            metrics["prior_alpha"] = alpha
        mlflow.log_metrics(metrics)
        meta = {"target": config.target, "unit": config.unit, "cutoff": cutoff,
                "metrics": metrics, "dataset_sha256": data.sha256, "run_id": run.info.run_id}
        ckpt = save_checkpoint(model, out / "model.ckpt", resolved, meta)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        mlflow.log_artifact(str(out / "metrics.json"))
        if (out / "parity.png").exists():
            mlflow.log_artifact(str(out / "parity.png"))
        shutil.rmtree(out / "model", ignore_errors=True)
        model_dir = save_pyfunc_model(ckpt, out / "model")
        uri = log_pyfunc_model(ckpt, config.register_name) if config.log_model else None
    log.info("finetune %s: test MAE %.1f meV", config.mode, metrics.get("test_mae_mev", np.nan))
    return FinetuneResult(model.eval(), metrics, history, resolved, split.sizes(), out, ckpt,
                          model_dir, run.info.run_id, uri, alpha,
                          [n for n, p in model.named_parameters() if not p.requires_grad])
