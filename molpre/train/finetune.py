"""Finetune an energy model on labeled conformers: ``finetune(config) -> FinetuneResult``.

One call = one MLflow run (molpre.tracking): resolved config as params, dataset hash and
provenance as tags, step-0 and per-epoch train/val MAE (meV), test MAE/RMSE (meV, kcal/mol)
against the atomref-only baseline, parity.png, and the model as an MLflow pyfunc. OUT gets
``model.ckpt`` (rebuilds itself), ``model/`` (pyfunc directory), ``metrics.json``,
``parity.png`` and ``split.csv``: every labeled row the model was trained, validated and
tested on (mol_id, part, row, group, smiles; :func:`molpre.data.splits.split_table`), also in
``model/artifacts/split.csv`` and the run's artifacts, so a model says which molecules it saw. Safe to call many times in one process (each call seeds and cleans up).

``ensemble: K`` (> 1) trains K members on the same split, member k seeded ``seed + k``
(its own initial weights and batch order; member 0 is the single-model run), each logged
with the prefix ``member_k.`` (member 0 unprefixed), and saves them as one
:class:`molpre.models.committee.Committee`: test metrics are the committee mean's, the
out-of-domain thresholds are calibrated on the validation set (``meta.domain``), and
``test_ood_fraction`` says how much of the test set they flag. ``committee_folds`` puts
members k >= 1 on validation folds of their own (molpre.train.folds). (A study's seeds
could form a committee the same way; not built.)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molpre.data.datasets import DatasetError, LabeledData, labeled_from_atoms, load_labeled
from molpre.data.graph import atoms_to_sample, collate
from molpre.data.splits import (
    Split,
    make_split,
    permutation_test_rows,
    read_ids,
    read_split,
    rows_matching,
    write_split,
)
from molpre.inference.batch import predict_targets, target_columns
from molpre.inference.inputs import known_mask
from molpre.inference.metrics import mean_only, parity_plot, target_metrics
from molpre.models.checkpoint import DTYPES, save_checkpoint
from molpre.models.committee import Committee, calibrate, out_of_domain_fraction
from molpre.models.energy import PropertyModel, make_head
from molpre.runtime import seed_everything, show_progress
from molpre.targets import TargetSpec, get_target, monitor_name
from molpre.targets.kinds import MeanPrior
from molpre.train.finetune_config import ConfigError, FinetuneConfig
from molpre.train.hardware import resolve_accelerator
from molpre.train.losses import snapshot
from molpre.train.modes import apply_mode, start_encoder

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """What a finetune produced; ``metrics`` holds test_/baseline_test_/val_ MAE and RMSE."""

    model: PropertyModel
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


#: The model's training, validation and test rows, in OUT and beside the model (split.csv).
SPLIT_FILE = "split.csv"


def split_data(config: FinetuneConfig, data: LabeledData) -> Split:
    """The config's split of ``data`` (a split file, test ids, the permutation protocol, or
    a fraction)."""
    if config.split_file:
        return read_split(config.split_file, data.mol_ids, data.groups)
    test_rows = None
    if config.test_ids:
        test_rows = rows_matching(read_ids(config.test_ids), data.mol_ids, data.groups)
    elif config.test_first:
        test_rows = permutation_test_rows(len(data), config.test_first, config.split_seed)
    return make_split(
        data.groups, seed=config.seed, split_seed=config.split_seed,
        test_fraction=config.test_fraction, test_rows=test_rows, budget=config.budget,
        val_fraction=config.val_fraction, elements=[a.numbers for a in data.atoms],
    )


def resolve_forces(config: FinetuneConfig, data: LabeledData) -> LabeledData:
    """``data`` with forces when the config fits them (``forces`` True, or None and every row
    has forces and the target includes energy), else without; True without forces raises."""
    if config.forces is False or "energy" not in data.targets:
        if config.forces:
            raise DatasetError("forces: true needs the energy target")
        return dataclasses.replace(data, forces=None)
    if data.forces is not None:
        return data
    try:
        with_forces = labeled_from_atoms(data.atoms, config.target, config.unit, True,
                                         source=data.source, sha256=data.sha256,
                                         forces_key=config.forces_key)
    except DatasetError:
        with_forces = None
    if with_forces is not None and len(with_forces) == len(data):
        return dataclasses.replace(data, forces=with_forces.forces)
    if config.forces:
        raise DatasetError(f"{data.source}: forces: true, but {len(data) - len(with_forces or [])}"
                           f" of {len(data)} rows have no forces (label with `molpre label "
                           "--forces`, or pass --no-forces)")
    log.info("finetune: %s has rows without forces, fitting energies only", data.source)
    return data


def apply_delta(config: FinetuneConfig, data: LabeledData, split: Split):
    """``(data, delta)``: for delta learning (molpre.delta) the energy labels, and the forces
    when both the labels and the cheap level have them, become the target minus the cheap
    level (``s`` fitted on the split's train + val rows unless ``delta_scale`` is set);
    otherwise ``(data, None)``. A level as ``config.delta`` is computed for every row and
    cached in OUT/cheap-<level>.db."""
    if not config.delta:
        return data, None
    from molpre.delta import cheap_labels, fit_delta, is_level

    cache = None
    if is_level(config.delta):
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        cache = str(out / f"cheap-{config.delta.replace('/', '_')}.db")
    forces = data.forces is not None
    cheap = cheap_labels(data, config.delta, cache=cache, forces=forces,
                         workers=config.threads or 1)
    rows = np.concatenate([split.train, split.val])
    delta = fit_delta(data, cheap, rows, config.delta_scale,
                      forces=forces and cheap.forces is not None)
    if forces and not delta.forces:
        log.info("finetune: %s has no forces at %s: fitting energies only", cheap.source,
                 cheap.level)
        data = dataclasses.replace(data, forces=None)
    log.info("finetune: delta learning on %s, scale %.4f", cheap.level, delta.scale)
    return delta.remove(data, cheap), delta


def _samples(data: LabeledData, cutoff: float, forces: bool) -> list[dict[str, torch.Tensor]]:
    """One sample per row with every target's label (``[1]`` or ``[1, 3]``, float64)."""
    samples = []
    for i, atoms in enumerate(data.atoms):
        sample = atoms_to_sample(atoms, cutoff,
                                 forces=data.forces[i] if forces and data.forces else None)
        for name, values in data.labels.items():
            value = torch.as_tensor(np.asarray(values[i], dtype=np.float64))
            sample[name] = value.reshape(1, 3) if value.dim() == 1 else value.reshape(1)
        samples.append(sample)
    return samples


def _heads(train: LabeledData, encoder) -> tuple[dict, dict[str, float], dict[str, dict]]:
    """``(heads, loss scales, fitted params)`` for every target of ``train``, fitted on it
    only by the target's kind (``spec.kind.fit``: an atomref and per-atom scale for
    extensive targets, the training mean and spread for intensive ones, ...)."""
    numbers = [a.numbers for a in train.atoms]
    heads, scales, fitted = {}, {}, {}
    for spec in train.specs:
        fit = spec.kind.fit(numbers, train.labels[spec.name])
        scales[spec.name], fitted[spec.name] = fit.scale, fit.params
        heads[spec.name] = make_head(spec, encoder, **fit.params)
    return heads, scales, fitted


def transfer_energy_head(head, encoder) -> None:
    """Start an energy head's atomic MLP from the encoder checkpoint's pretrained cheap-level
    energy head (its widths and scale too); the atomref stays the one fitted on the target.
    ConfigError when the checkpoint has none."""
    from molpre.targets.kinds.base import mlp

    state = getattr(encoder, "checkpoint_heads", {}).get("energy")
    meta = getattr(encoder, "checkpoint_meta", {}).get("energy_head")
    if state is None or meta is None:
        raise ConfigError("head: pretrained, but the encoder checkpoint has no energy head: "
                          "pretrain it on a labeled corpus with --objectives cheap_energy")
    hidden = int(state["0.weight"].shape[0])
    readout = mlp(int(state["0.weight"].shape[1]), hidden)
    readout.load_state_dict(state)
    dtype = next(head.parameters()).dtype
    head.readout, head.hidden, head.scale = readout.to(dtype), hidden, float(meta["scale"])


def _build_model(config: FinetuneConfig, encoder, train: LabeledData):
    """The PropertyModel to finetune (the config's dtype and mode), its loss scales and
    fitted head parameters."""
    heads, scales, fitted = _heads(train, encoder)
    if config.head == "pretrained":
        transfer_energy_head(heads["energy"], encoder)
    elements = sorted({int(z) for a in train.atoms for z in a.numbers})
    model = PropertyModel(encoder, heads, elements)
    model.to(DTYPES[config.dtype])
    apply_mode(model, config.mode)
    return model, scales, fitted


def _loader(samples: list, batch_size: int, shuffle: bool, seed: int):
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(samples, batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                      generator=generator)


def _schedule(config: FinetuneConfig, n_train: int, monitor: str):
    """Early stopping on ``monitor`` (the plateau scheduler halves lr inside the task), or,
    with ``config.anneal``, the cosine cooldown over the run's budget of epochs or minutes."""
    from lightning.pytorch.callbacks import EarlyStopping

    from molpre.train.anneal import LrAnneal

    if not config.anneal:
        return EarlyStopping(monitor, patience=config.patience)
    batches = math.ceil(n_train / config.batch_size)
    return LrAnneal(config.lr, config.anneal, total_steps=batches * config.epochs)


def _fit(config, model, train, val, scale, alpha, reference, minutes, prefix, forces, caps=None):
    """Train ``model`` in place (best-validation weights restored); returns (best, history).
    ``caps``: validation metrics also logged clipped (molpre.train.task.clipped)."""
    import lightning.pytorch as pl

    from molpre.train.task import AveragedWeights, BestWeights, MlflowEpochMetrics, PropertyTask

    weights = {"energy": config.energy_weight}  # the config's one per-target weight
    task = PropertyTask(model, lr=config.lr, weight_decay=config.weight_decay, weights=weights,
                        forces_weight=config.force_weight if forces else 0.0,
                        scales=scale, alpha=alpha, reference=reference, patience=config.patience,
                        plateau=not config.anneal, penalty=config.loss)
    averaged = AveragedWeights(decay=config.ema_decay) if config.ema_decay else None
    best, epochs = BestWeights(averaged), MlflowEpochMetrics(prefix, caps)
    callbacks = [best, epochs, _schedule(config, len(train), task.monitor)]
    if averaged is not None:
        callbacks.append(averaged)
    trainer = pl.Trainer(
        max_epochs=config.epochs, max_time=timedelta(minutes=minutes) if minutes else None,
        accelerator=resolve_accelerator(config.accelerator), devices=config.devices,
        logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=show_progress(config.progress), inference_mode=False,
        num_sanity_val_steps=0, default_root_dir=config.out,
        callbacks=callbacks,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*(num_workers|does not have many workers).*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning on torch >= 2.10
        trainer.fit(task, _loader(train, config.batch_size, True, config.seed),
                    _loader(val, 256, False, config.seed))
    best.restore(model)
    return best.best, epochs.history


def _train(config, model, train, val, scale, forces: bool = False,
           member: str = "", caps: dict[str, float] | None = None) -> tuple[float | None, list[dict]]:
    """Fit once (or once per alpha for ``prior``), keep the best validation model;
    ``forces``: fit forces too; ``member`` prefixes the MLflow metric names (``member_1.``)."""
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
        prefix = member + (f"alpha_{alpha:g}." if len(alphas) > 1 else "")
        val_mae, history = _fit(config, model, train, val, scale, alpha, reference, minutes, prefix,
                                forces, caps)
        if len(alphas) > 1 and np.isfinite(val_mae):
            mlflow.log_metric(f"{member}alpha_search.{monitor_name(_specs(model))}", val_mae,
                              step=alphas.index(alpha))
        if val_mae < chosen[0] or chosen[1] is None:
            chosen = (val_mae, alpha, copy.deepcopy(model.state_dict()), history)
    model.load_state_dict(chosen[2])
    if len(alphas) > 1:
        for row in chosen[3]:
            mlflow.log_metrics({f"{member}{k}": v for k, v in row.items() if k != "epoch"},
                               step=row["epoch"])
    return (chosen[1] if config.mode == "prior" else None), chosen[3]


def _train_committee(config, model, train_data: LabeledData, train, val, scale,
                     forces: bool = False, caps: dict[str, float] | None = None, folds=None):
    """Train ``model`` (member 0) and, for ``config.ensemble`` K > 1, K - 1 more members
    seeded ``seed + k``; returns ``(model or Committee, alpha of member 0, its history)``.
    ``folds``: ``folds(k) -> (train_data, train samples, val samples)`` of member k
    (``committee_folds``); None: every member on member 0's."""
    minutes = config.max_minutes / config.ensemble if config.max_minutes else None
    alpha, history = _train(config.replace(max_minutes=minutes), model, train, val, scale, forces,
                            caps=caps)
    _refit(config, model, train_data, train)
    if config.ensemble == 1:
        return model, alpha, history
    members = [model]
    for k in range(1, config.ensemble):
        member_config = config.replace(seed=config.seed + k, max_minutes=minutes)
        member_data, member_train, member_val = (train_data, train, val) if folds is None else folds(k)
        seed_everything(member_config.seed)
        member, member_scale, _ = _build_model(member_config, start_encoder(member_config),
                                               member_data)
        _train(member_config, member, member_train, member_val, member_scale, forces,
               member=f"member_{k}.", caps=caps)
        _refit(config, member, member_data, member_train, f"member_{k}.")
        members.append(member)
    return Committee(members), alpha, history


def _member_folds(config: FinetuneConfig, data: LabeledData, split: Split, samples: list):
    """``folds(k)`` for :func:`_train_committee` under ``committee_folds`` (molpre.train.folds),
    reusing the graphs already built for the split's train and val rows; None without folds.
    Logs each member's fold sizes (``split.member_k.train`` / ``.val``)."""
    if not (config.committee_folds and config.ensemble > 1):
        return None
    import mlflow

    from molpre.train.folds import fold_splits

    splits = fold_splits(split, data.groups, config.ensemble, config.seed,
                         [a.numbers for a in data.atoms])
    by_row = dict(zip(np.concatenate([split.train, split.val]).tolist(), samples[0] + samples[1],
                      strict=True))
    for k, member in enumerate(splits[1:], start=1):
        mlflow.log_params({f"split.member_{k}.train": len(member.train),
                           f"split.member_{k}.val": len(member.val)})

    def folds(k: int):
        member = splits[k]
        return (data.subset(member.train), [by_row[int(r)] for r in member.train],
                [by_row[int(r)] for r in member.val])

    return folds


def _refit(config: FinetuneConfig, model, train_data: LabeledData, train, member: str = "") -> None:
    """With ``config.refit_atomref``: refit ``model``'s heads on its training residuals
    (molpre.train.refit) and log the shifts."""
    if not config.refit_atomref:
        return
    import mlflow

    from molpre.train.refit import refit_heads, refit_metrics

    metrics = refit_metrics(refit_heads(model, train_data, train), member)
    if metrics and mlflow.active_run() is not None:
        mlflow.log_metrics(metrics)


def _specs(model) -> list[TargetSpec]:
    return [get_target(name) for name in model.targets]


def _evaluate(model, parts, train: LabeledData, out: Path, title: str = "") -> dict[str, float]:
    """Val and test metrics per target, the baseline on test (``baseline_test_``: the prior
    of the target's kind fitted on the training labels: the per-element fit for extensive
    targets, the training mean otherwise; ``mean_test_``: the training mean where that is
    not the prior), forces when fitted, and the first target's parity plot. Test molecules
    with an element never seen in training are skipped (``test_n_unsupported``). The
    parity plot is titled ``title`` (run, mode and label count), then the test MAE."""
    (val, val_samples), (test, test_samples) = parts
    metrics: dict[str, float] = {}
    val_pred = predict_targets(model, val_samples)
    numbers = [a.numbers for a in test.atoms]
    known = known_mask(numbers, model.elements)
    test_pred = predict_targets(model, [s for s, k in zip(test_samples, known, strict=True) if k])
    train_numbers = [a.numbers for a in train.atoms]
    for spec in _specs(model):
        label = test.labels[spec.name][known]
        metrics.update(target_metrics(spec, val_pred[spec.name], val.labels[spec.name], "best_val_"))
        metrics.update(target_metrics(spec, test_pred[spec.name], label, "test_"))
        prior = spec.kind.prior(train_numbers, train.labels[spec.name])
        base = prior.predict(numbers)[known]
        metrics.update(target_metrics(spec, base, label, "baseline_test_"))
        if not isinstance(prior, MeanPrior):
            mean = mean_only(spec, train.labels[spec.name], int(known.sum()))
            metrics.update(target_metrics(spec, mean, label, "mean_test_"))
        if spec is _specs(model)[0] and known.any():
            parity_plot(spec.kind.scalar(label), spec.kind.scalar(test_pred[spec.name]), base,
                        out / "parity.png", title=_heading(spec, metrics, title, known),
                        unit=spec.unit, baseline_name=spec.kind.prior_description)
    if val.forces is not None:
        metrics.update(_force_metrics(model, val_samples, "best_val_"))
        metrics.update(_force_metrics(model, [s for s, k in zip(test_samples, known, strict=True)
                                              if k], "test_"))
    metrics["test_n"], metrics["test_n_unsupported"] = int(known.sum()), int((~known).sum())
    return metrics


def _heading(spec: TargetSpec, metrics: dict[str, float], title: str, known) -> str:
    """The parity plot's title: ``title``, then the test MAE in every report unit."""
    maes = [f"{metrics[spec.metric_name('mae', 'test_', u)]:.4g} {u}" for u, _ in spec.report_units]
    return (f"{title}\ntest {spec.name} MAE {maes[0]}"
            + "".join(f" ({m})" for m in maes[1:]) + f", {int(known.sum())} molecules")


def _force_metrics(model, samples, prefix: str, batch_size: int = 64) -> dict[str, float]:
    """``<prefix>forces_mae_mev_per_a`` / ``_rmse_`` over all force components (meV/Angstrom)."""
    spec = get_target("forces")
    pred, ref = [], []
    was_training = model.training
    model.eval()
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        out = model(collate(chunk), compute_forces=True)
        pred.append(out[spec.output_key].detach().double().cpu().numpy())
        ref.append(torch.cat([s[spec.label_key] for s in chunk]).double().numpy())
    model.train(was_training)
    return target_metrics(spec, pred, ref, prefix)


def _step0(model, val: LabeledData, samples) -> dict[str, float]:
    """Validation MAE of the untrained model per target (``val_mae_mev``, ``val_mae_gap_mev``)."""
    pred = predict_targets(model, samples)
    return {spec.metric_name("mae", "val_"):
            target_metrics(spec, pred[spec.name], val.labels[spec.name])[spec.metric_name("mae")]
            for spec in _specs(model)}


def _clip_caps(model, train: LabeledData, val: LabeledData) -> dict[str, float]:
    """Per target: :data:`molpre.train.task.CLIP_FACTOR` x the validation MAE of the target
    kind's baseline fitted on the training labels (``{"val_mae_mev": ...}``)."""
    from molpre.train.task import CLIP_FACTOR

    caps = {}
    for spec in _specs(model):
        prior = spec.kind.prior([a.numbers for a in train.atoms], train.labels[spec.name])
        base = np.asarray(prior.predict([a.numbers for a in val.atoms]), dtype=float)
        known = np.isfinite(base)  # NaN: an element the training labels never show
        if known.any():
            mae = target_metrics(spec, base[known], val.labels[spec.name][known])
            caps[spec.metric_name("mae", "val_")] = CLIP_FACTOR * mae[spec.metric_name("mae")]
    return caps


def _calibrate(model, train: LabeledData, samples, metrics: dict[str, float]) -> dict | None:
    """A committee's Domain (as a dict) from its validation spreads; adds
    ``ood_threshold_<column>`` and ``test_ood_fraction`` to ``metrics``. None for one model."""
    if not isinstance(model, Committee):
        return None
    max_atoms = max(len(a) for a in train.atoms)
    domain = calibrate(model, samples[1], max_atoms)
    known = [s for s in samples[2] if set(map(int, s["atomic_numbers"].tolist())) <= set(model.elements)]
    metrics.update({f"ood_threshold_{c}": v for c, v in domain.thresholds.items()})
    metrics["test_ood_fraction"] = out_of_domain_fraction(model, domain, known)
    return domain.to_dict()


def finetune(config: FinetuneConfig | dict, data: LabeledData | None = None) -> FinetuneResult:
    """Run one finetune (see the module docstring); ``data`` skips re-reading ``config.data``."""
    import mlflow

    from molpre.inference import log_pyfunc_model, save_pyfunc_model
    from molpre.tracking import start_run
    from molpre.train.task import clipped

    config = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
    resolve_accelerator(config.accelerator)  # a missing GPU fails before any work
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = data if data is not None else load_labeled(config.data, config.target, config.unit)
    data = resolve_forces(config, data)
    split = split_data(config, data)
    data, delta = apply_delta(config, data, split)
    forces = data.forces is not None
    train, val, test = (data.subset(split.train), data.subset(split.val), data.subset(split.test))
    encoder = start_encoder(config)
    model, scales, _ = _build_model(config, encoder, train)
    cutoff = float(encoder.config.cutoff)
    samples = [_samples(d, cutoff, forces) for d in (train, val, test)]
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
        step0 = _step0(model, val, samples[1])
        caps = _clip_caps(model, train, val)
        mlflow.log_metrics({**step0, **clipped(step0, caps)}, step=0)
        mlflow.log_params({"forces_fitted": forces, "forces_weight_used":
                           config.force_weight if forces else 0.0})
        model, alpha, history = _train_committee(config, model, train, samples[0], samples[1],
                                                 scales, forces, caps,
                                                 _member_folds(config, data, split, samples))
        parts = [(val, samples[1]), (test, samples[2])]
        metrics = {**{f"step0_{k}": v for k, v in step0.items()},
                   **_evaluate(model, parts, train, out,
                               f"{name}: {config.mode}, {labels} labels")}
        if alpha is not None:
            metrics["prior_alpha"] = alpha
        domain = _calibrate(model, train, samples, metrics)
        mlflow.log_metrics(metrics)
        meta = {"target": config.target, "unit": config.unit, "forces_key": config.forces_key,
                "cutoff": cutoff,
                "targets": model.targets, "columns": target_columns(model),
                "metrics": metrics, "dataset_sha256": data.sha256, "run_id": run.info.run_id}
        if domain is not None:
            meta.update(committee=model.size, domain=domain)
        if delta is not None:
            meta["delta"] = delta.to_meta()
            mlflow.log_metric("delta_scale", delta.scale)
        ckpt = save_checkpoint(model, out / "model.ckpt", resolved, meta)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        split_file = write_split(out / SPLIT_FILE, split, data.mol_ids, data.groups,
                                 [str(a.info.get("smiles", "")) for a in data.atoms])
        for path in (out / "metrics.json", split_file, out / "parity.png"):
            if path.exists():
                mlflow.log_artifact(str(path))
        shutil.rmtree(out / "model", ignore_errors=True)
        files = {"split": split_file}  # the model's rows go with it (model/artifacts/)
        model_dir = save_pyfunc_model(ckpt, out / "model", files)
        uri = (log_pyfunc_model(ckpt, config.register_name, files) if config.log_model
               else None)
    for spec in _specs(model):
        log.info("finetune %s: test %s %.4g", config.mode, spec.metric_name("mae"),
                 metrics.get(spec.metric_name("mae", "test_"), np.nan))
    return FinetuneResult(model.eval(), metrics, history, resolved, split.sizes(), out, ckpt,
                          model_dir, run.info.run_id, uri, alpha,
                          [n for n, p in model.named_parameters() if not p.requires_grad])
