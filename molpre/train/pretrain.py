"""``pretrain(config) -> PretrainResult``: corpus -> shards -> Lightning pretraining -> encoder.

OUTDIR holds ``shards/`` (unless the config names existing shards), ``last.ckpt`` (written
atomically every ``train.checkpoint_every_n_steps`` steps, on Ctrl-C and at the end; a
re-run resumes from it and the step count continues), ``checkpoints/`` (the newest
``train.keep_checkpoints`` periodic checkpoints), ``encoder.pt`` (the best encoder by the
probe proxy, else the last; written by :func:`molpre.models.encoder.save_encoder`) and
``run.json`` (the MLflow run id, so a resumed run keeps logging into the same run). Every
metric goes to MLflow through Lightning's MLFlowLogger; checkpoints and the encoder are
logged as artifacts. Ctrl-C stops after the current step and raises
:class:`PretrainInterrupted` with the MLflow run marked KILLED.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from molpre.config import to_dict
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import read_manifest
from molpre.models.presets import resolve_config
from molpre.nn.compiled import compile_wanted
from molpre.runtime import seed_everything, show_progress
from molpre.train import callbacks as cb
from molpre.train import monitors
from molpre.train.anneal import LrAnneal
from molpre.train.hardware import resolve_accelerator, set_threads
from molpre.train.objectives import views_needed
from molpre.train.pretrain_config import PretrainConfig, resolve
from molpre.train.pretrain_data import monitor_batch, probe_batches
from molpre.train.pretrain_module import PretrainModule

log = logging.getLogger(__name__)


@dataclass
class PretrainResult:
    """What a pretraining run produced."""

    run_id: str
    experiment: str
    outdir: Path
    encoder_path: Path
    last_checkpoint: Path
    global_step: int
    best_step: int | None = None
    best_probe_mae: float | None = None
    init_probe_mae: float | None = None  # the same probe on the step-0 (random-init) encoder
    collapse_suspected: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    molecules_used: int = 0  # of manifest["molecules"]: corpus.max_molecules may take fewer
    molecules_held_out: int = 0  # in the validation shards


class PretrainInterrupted(KeyboardInterrupt):
    """Pretraining stopped by Ctrl-C: ``last.ckpt`` holds step ``step``; the run is KILLED."""

    def __init__(self, step: int | None, last_checkpoint: Path, run_id: str):
        self.step, self.last_checkpoint, self.run_id = step, last_checkpoint, run_id
        where = (f"at step {step}; saved {last_checkpoint}" if step is not None
                 else f"(last saved checkpoint: {last_checkpoint if last_checkpoint.is_file() else 'none'})")
        super().__init__(f"interrupted {where}; MLflow run {run_id} marked KILLED; "
                         "run the same command again to resume")

    def __str__(self) -> str:
        return str(self.args[0])


def check_corpus(manifest: Mapping[str, Any], shard_dir: Path) -> None:
    """ValueError when the shards hold no molecule (every one was rejected)."""
    if int(manifest.get("molecules", 0)) > 0:
        return
    reasons = manifest.get("failure_reasons") or {}
    top = ", ".join(f"{r} ({n})" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:3])
    raise ValueError(f"no usable molecule in the pretraining corpus: all {manifest.get('failed', 0)} "
                     f"were rejected{': ' + top if top else ''}; see {shard_dir / 'failures.csv'} "
                     "and give a corpus of valid molecules")


def check_labels(objectives: Mapping[str, Any], manifest: Mapping[str, Any],
                 shard_dir: Path) -> None:
    """ValueError, before any work, when an objective needs labels the corpus lacks."""
    from molpre.train.objectives import active, objective_class

    labels = manifest.get("labels") or {}
    for name in active(objectives):
        need = objective_class(name).needs_labels
        if need and (not labels or (need == "forces" and not labels.get("forces"))):
            what = "cheap-level forces" if need == "forces" else "cheap-level energies"
            raise ValueError(f"objective {name} needs {what}, and the corpus {shard_dir} has "
                             "none: build a labeled one with `molpre submit "
                             "workflows/corpus_xtb.yaml --input MOLECULES -o CORPUS`, or "
                             "choose label-free objectives (--objectives mask,contrast,denoise)")


def label_scales(shard_dir: Path, manifest: Mapping[str, Any]) -> dict[str, float]:
    """The spread of a labeled corpus's first shard: ``energy`` (eV/atom, after the
    per-element fit) and ``forces`` (eV/Angstrom, per component); what the cheap objectives
    measure their losses in when no ``scale`` is configured."""
    from molpre.data.shards import iter_shard

    offsets = {int(z): v for z, v in (manifest.get("labels") or {}).get("offsets", {}).items()}
    per_atom, forces = [], []
    for mol in iter_shard(shard_dir / manifest["shards"][0]["file"]):
        if mol.energies is None:
            return {}
        reference = sum(offsets.get(int(z), 0.0) for z in mol.numbers)
        per_atom.extend((mol.energies - reference) / len(mol.numbers))
        if mol.forces is not None:
            forces.append(mol.forces.ravel())
    out = {"energy": max(float(np.std(per_atom)), 1e-3)}
    if forces:
        out["forces"] = max(float(np.std(np.concatenate(forces))), 1e-3)
    return out


def with_label_scales(objectives: Mapping[str, Any], shard_dir: Path,
                      manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``objectives`` with each active cheap objective's ``scale`` set from the corpus where
    the config left it empty (so the resolved config, and the checkpoint, hold the value)."""
    from molpre.train.objectives import active, objective_class

    out = {name: dict(section) for name, section in objectives.items()}
    needing = [n for n in active(objectives) if objective_class(n).needs_labels
               and out[n].get("scale") is None]
    if needing:
        scales = label_scales(shard_dir, manifest)
        for name in needing:
            out[name]["scale"] = scales.get(objective_class(name).needs_labels)
    return out


def split_shards(manifest: Mapping[str, Any], val_shards: int | None
                 ) -> tuple[list[str], list[str]]:
    """(training shard files, held-out shard files): the last ``val_shards`` shards held
    out (None: one when the corpus has at least 4 shards, else none)."""
    files = [shard["file"] for shard in manifest["shards"]]
    held = (1 if len(files) >= 4 else 0) if val_shards is None else int(val_shards)
    if held >= len(files):
        raise ValueError(f"corpus.val_shards = {held} leaves no shard to train on "
                         f"({len(files)} shards)")
    return files[:len(files) - held], files[len(files) - held:]


def planned_steps(config: PretrainConfig, manifest: Mapping[str, Any], train_files: list[str]) -> int:
    """Optimizer steps the run plans: ``max_steps``, else epochs x training molecules / batch."""
    if config.train.max_steps > 0:
        return int(config.train.max_steps)
    molecules = sum(s["molecules"] for s in manifest["shards"] if s["file"] in set(train_files))
    return int(config.train.epochs) * -(-molecules // int(config.train.batch_size))


def prepare_shards(config: PretrainConfig, outdir: Path, progress: bool = True) -> Path:
    """The shard directory: the configured one, a complete OUTDIR/shards, or a fresh build
    by the corpus job (molpre.workflow: conformers, ``corpus.copies`` displaced copies and,
    with ``corpus.level``, their labels) on ``corpus.workers`` processes."""
    if config.corpus.shards:
        read_manifest(config.corpus.shards)
        return Path(config.corpus.shards)
    shard_dir = outdir / "shards"
    try:
        read_manifest(shard_dir)
        return shard_dir
    except FileNotFoundError:
        pass
    build_corpus(config, shard_dir, progress)
    return shard_dir


def build_corpus(config: PretrainConfig, shard_dir: Path, progress: bool) -> dict:
    """Run the corpus job of ``config.corpus`` into ``shard_dir``; returns its counts."""
    from molpre.chem import corpus_path
    from molpre.executor import ProcessBackend
    from molpre.qc.levels import parse_level
    from molpre.workflow.jobs import run_job
    from molpre.workflow.spec import job_from_dict

    corpus = config.corpus
    source = Path(corpus.path) if corpus.path else corpus_path()
    if corpus.max_molecules:
        source = _first_rows(source, int(corpus.max_molecules), shard_dir.parent)
    level = parse_level(corpus.level).to_dict() if corpus.level else {}
    spec = job_from_dict({
        "kind": "corpus", "chunk_size": 16, "shard_size": corpus.shard_size,
        "conformers": {"n": corpus.conformers, "seed": config.seed},
        "perturb": {"copies": corpus.copies, "sigma": corpus.sigma},
        "label": bool(level), "forces": bool(level), **({"level": level} if level else {}),
        "intake": {"smiles_col": corpus.smiles_col}})
    backend = ProcessBackend(max(1, int(corpus.workers)))
    try:
        summary = run_job(spec, source, shard_dir, backend, progress=progress, track=False)
    finally:
        backend.close()
    return summary.output


def _first_rows(path: Path, n: int, where: Path) -> Path:
    """A copy of the first ``n`` molecules of a text molecule file (``corpus.max_molecules``:
    the job then sees exactly those); other formats are used whole."""
    from molpre.chem.readers import _open_text, _suffix

    if _suffix(path) not in (".smi", ".txt", ".smiles", ".csv", ".tsv"):
        return path
    out = where / f"corpus_first{n}{_suffix(path)}"
    with _open_text(path) as src, open(out, "w") as dst:
        header = _suffix(path) in (".csv", ".tsv")
        for k, line in enumerate(src):
            if k >= n + int(header):
                break
            dst.write(line)
    return out


def write_json(path: Path, payload: dict) -> None:
    """JSON to a temporary file beside ``path``, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def recorded_run(outdir: Path) -> str | None:
    """The MLflow run id in OUTDIR/run.json, if any."""
    record = outdir / "run.json"
    return json.loads(record.read_text())["run_id"] if record.is_file() else None


def retire_run(run_id: str) -> None:
    """Mark a run that a kill left RUNNING as KILLED (it has no checkpoint to resume)."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
    except mlflow.exceptions.MlflowException:
        pass  # not in this store: nothing to retire


def with_absolute_paths(config: PretrainConfig) -> PretrainConfig:
    """``config`` with its input files (corpus, shards, probe data) as absolute paths, so the
    logged config names them wherever a later reader (``molpre study``'s contamination audit,
    a resumed run) starts from."""
    def absolute(path: str | None) -> str | None:
        return str(Path(path).expanduser().resolve()) if path else path

    corpus = replace(config.corpus, path=absolute(config.corpus.path),
                     shards=absolute(config.corpus.shards))
    return replace(config, corpus=corpus,
                   probe=replace(config.probe, data=absolute(config.probe.data)))


@contextmanager
def mlflow_run(config: PretrainConfig, outdir: Path, resuming: bool, hashes: dict):
    """Open the MLflow run: the one recorded in OUTDIR/run.json when resuming, else a new one.

    A KeyboardInterrupt (Ctrl-C) inside ends the run as KILLED.
    """
    import mlflow

    from molpre.tracking import start_run, tracking_uri

    previous = recorded_run(outdir)
    mlflow.set_tracking_uri(tracking_uri())
    if resuming and previous:
        try:
            mlflow.MlflowClient().get_run(previous)
        except mlflow.exceptions.MlflowException:
            raise ValueError(f"{outdir / 'run.json'} names MLflow run {previous}, which the "
                             f"tracking store {tracking_uri()} does not hold: use the same "
                             "MLFLOW_TRACKING_URI, or --set resume=false to start over") from None
        context = mlflow.start_run(run_id=previous)
    else:
        if previous:
            retire_run(previous)
        tracking = config.tracking
        context = start_run(tracking.run_name, to_dict(config), experiment=tracking.experiment,
                            dataset_hashes=hashes, tags={"stage": "pretrain"})
    with context as run:
        write_json(outdir / "run.json", {"run_id": run.info.run_id,
                                         "experiment": config.tracking.experiment})
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise


def make_trainer(config: PretrainConfig, outdir: Path, run_id: str,
                 callbacks: list[L.Callback], validating: bool = False) -> L.Trainer:
    """A Lightning Trainer logging to MLflow run ``run_id`` and checkpointing into OUTDIR;
    ``validating``: every ``train.val_every_n_steps`` steps, ``train.val_batches`` batches of
    the held-out shards (grad mode on: force objectives differentiate there too)."""
    from lightning.pytorch.loggers import MLFlowLogger

    from molpre.tracking import tracking_uri

    t = config.train
    logger = MLFlowLogger(experiment_name=config.tracking.experiment,
                          tracking_uri=tracking_uri(), run_id=run_id)
    strategy = t.strategy
    if strategy == "auto" and int(t.devices) > 1:
        strategy = "ddp_spawn"  # the driver (shards, MLflow run) must not re-run per rank
    max_time = {"seconds": t.max_time_s} if t.max_time_s else None
    validate = {"val_check_interval": int(t.val_every_n_steps),
                "check_val_every_n_epoch": None, "limit_val_batches": int(t.val_batches),
                "inference_mode": False} if validating else {}
    return L.Trainer(
        accelerator=resolve_accelerator(t.accelerator), devices=t.devices,
        strategy=strategy, default_root_dir=outdir,
        max_epochs=t.epochs, max_steps=t.max_steps, max_time=max_time, logger=logger,
        callbacks=callbacks, log_every_n_steps=t.log_every_n_steps,
        gradient_clip_val=t.grad_clip, enable_progress_bar=show_progress(t.progress),
        enable_model_summary=False, num_sanity_val_steps=0, use_distributed_sampler=False,
        **validate)


def build_callbacks(config: PretrainConfig, dataset: ShardDataset, cutoff: float,
                    outdir: Path) -> list[L.Callback]:
    """Collapse watch, the probe proxy when configured, the lr cooldown (``train.anneal``)
    and the checkpoints (last)."""
    m, p, t = config.monitor, config.probe, config.train
    thresholds = monitors.CollapseThresholds(m.min_std, m.min_effective_rank, m.max_uniformity)
    watch = cb.CollapseWatch(monitor_batch(dataset, m.molecules, seed=config.seed),
                             dataset.views, thresholds, m.every_n_steps, m.stop_on_collapse)
    out: list[L.Callback] = [watch]
    if p.data:
        batches, y = probe_batches(p.data, p.target, cutoff, p.max_molecules)
        detector = monitors.ShortcutDetector(p.window, p.loss_drop, p.probe_gain)
        out.append(cb.ProbeProxy(batches, y, outdir / "encoder.pt", every_n_steps=p.every_n_steps,
                                 holdout=p.holdout, detector=detector, target_name=p.target))
    if t.anneal > 0:
        out.append(LrAnneal(t.lr, t.anneal))
    out.append(cb.Checkpoints(outdir, t.checkpoint_every_n_steps, t.keep_checkpoints,
                              has_probe=bool(p.data)))
    return out


def pretrain(config: PretrainConfig | Mapping[str, Any] | str | Path | None = None,
             **sections: Any) -> PretrainResult:
    """Run pretraining for a config (a PretrainConfig, or a dict or YAML path loaded into
    one; ``sections`` merge on top).

    Needs ``config.output`` (OUTDIR). Resumes from OUTDIR/last.ckpt when present and
    ``resume`` is true, in the MLflow run of OUTDIR/run.json. Returns the run id, paths,
    final step and last logged metrics. Raises :class:`PretrainInterrupted` on Ctrl-C (after
    saving last.ckpt and marking the run KILLED) and ValueError for an unusable config or
    corpus.
    """
    import mlflow

    from molpre.runtime import file_sha256

    cfg = with_absolute_paths(as_config(config, sections))
    if not cfg.output:
        raise ValueError("config output (OUTDIR) is required")
    resolve_accelerator(cfg.train.accelerator)  # fail before any work
    outdir = Path(cfg.output)
    outdir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    shard_dir = prepare_shards(cfg, outdir, progress=show_progress(cfg.train.progress))
    manifest = read_manifest(shard_dir)
    check_corpus(manifest, shard_dir)
    check_labels(cfg.objectives, manifest, shard_dir)
    cfg = replace(cfg, objectives=with_label_scales(cfg.objectives, shard_dir, manifest))
    enc_cfg = resolve_config(cfg.model.preset, **cfg.model.overrides)
    train_files, val_files = split_shards(manifest, cfg.corpus.val_shards)
    loader, val_loader, dataset, held_out = data_loaders(cfg, shard_dir, enc_cfg.cutoff,
                                                          train_files, val_files)
    module = PretrainModule(enc_cfg.to_dict(), cfg.objectives, lr=cfg.train.lr,
                            weight_decay=cfg.train.weight_decay)
    module.encoder.compile_blocks(compile_wanted(cfg.train.compile,
                                                 planned_steps(cfg, manifest, train_files)))
    module.label_level = (manifest.get("labels") or {}).get("level")
    callbacks = build_callbacks(cfg, dataset, enc_cfg.cutoff, outdir)
    checkpoints = next(c for c in callbacks if isinstance(c, cb.Checkpoints))
    last = outdir / "last.ckpt"
    resuming = bool(cfg.resume) and last.is_file()
    hashes = {"shards.manifest": file_sha256(shard_dir / "manifest.json")}
    if cfg.probe.data:
        hashes["probe"] = file_sha256(cfg.probe.data)
    with mlflow_run(cfg, outdir, resuming, hashes) as run:
        mlflow.MlflowClient().set_tag(run.info.run_id, "compiled",
                                      str(module.encoder.runner.enabled).lower())
        trainer = make_trainer(cfg, outdir, run.info.run_id, callbacks,
                               validating=val_loader is not None)
        try:
            with checkpoints.catch_sigint(), warnings.catch_warnings():
                # validation is optional (corpus.val_shards): without it Lightning warns
                warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
                warnings.filterwarnings("ignore", ".*(num_workers|does not have many workers).*")
                warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning on torch >= 2.10
                trainer.fit(module, train_dataloaders=loader, val_dataloaders=val_loader,
                            ckpt_path=str(last) if resuming else None, weights_only=True)
        except SystemExit as exc:  # Lightning's answer to a second Ctrl-C: sys.exit(1)
            raise PretrainInterrupted(None, last, run.info.run_id) from exc
        if checkpoints.stopped_at is not None:
            raise PretrainInterrupted(checkpoints.stopped_at, last, run.info.run_id)
        result = finish(cfg, outdir, run.info.run_id, trainer, callbacks, manifest,
                        dataset.n_molecules)
        result.molecules_held_out = held_out.n_molecules if held_out is not None else 0
        return result


def as_config(config: PretrainConfig | Mapping[str, Any] | str | Path | None,
              sections: Mapping[str, Any] | None = None) -> PretrainConfig:
    """``config`` as a checked PretrainConfig (a dict or YAML path is loaded; ``sections``,
    nested dicts, merge on top: ConfigError names a bad key)."""
    from molpre.train.pretrain_config import load_pretrain_config, merge

    if isinstance(config, PretrainConfig) and not sections:
        return config
    base = to_dict(config) if isinstance(config, PretrainConfig) else resolve(config)
    return load_pretrain_config(merge(base, sections or {}))


def data_loaders(cfg: PretrainConfig, shard_dir: Path, cutoff: float, train_files: list[str],
                 val_files: list[str]):
    """(training loader, held-out loader or None, training dataset, held-out dataset or
    None) over the shards' conformer views at ``cutoff`` Angstrom."""
    views = views_needed(cfg.objectives)
    t = cfg.train
    dataset = ShardDataset(shard_dir, cutoff, views=views, shuffle_buffer=t.shuffle_buffer,
                           seed=cfg.seed, max_molecules=cfg.corpus.max_molecules,
                           files=train_files)
    readers = int(t.devices) * max(1, t.num_workers)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=t.batch_size, collate_fn=collate_views, num_workers=t.num_workers,
        drop_last=dataset.reader_quota(readers) >= t.batch_size)  # no 1-molecule contrast batch
    if not val_files:
        return loader, None, dataset, None
    held_out = ShardDataset(shard_dir, cutoff, views=views, shuffle_buffer=1, seed=cfg.seed,
                            files=val_files)
    val_loader = torch.utils.data.DataLoader(held_out, batch_size=t.batch_size,
                                             collate_fn=collate_views, drop_last=True)
    return loader, val_loader, dataset, held_out


def finish(cfg: PretrainConfig, outdir: Path, run_id: str, trainer: L.Trainer,
           callbacks: list[L.Callback], manifest: dict, molecules_used: int) -> PretrainResult:
    """Log artifacts and the selection tags, and collect the result.

    ``molecules_used``: how many of the shards' molecules the run drew from.
    """
    import mlflow

    client = mlflow.MlflowClient()
    for path in (outdir / "encoder.pt", outdir / "last.ckpt"):
        if path.is_file():
            client.log_artifact(run_id, str(path), artifact_path="checkpoints")
    client.log_dict(run_id, manifest, "shards/manifest.json")
    run = client.get_run(run_id)
    encoder_meta = torch.load(outdir / "encoder.pt", weights_only=True)["meta"]
    client.set_tag(run_id, "encoder.selected_by", str(encoder_meta.get("selected_by")))
    client.set_tag(run_id, "corpus.molecules_used", str(molecules_used))
    step = int(torch.load(outdir / "last.ckpt", weights_only=True)["global_step"])
    probe = next((c for c in callbacks if isinstance(c, cb.ProbeProxy)), None)
    return PretrainResult(
        run_id=run_id, experiment=cfg.tracking.experiment, outdir=outdir,
        encoder_path=outdir / "encoder.pt", last_checkpoint=outdir / "last.ckpt",
        global_step=step, best_step=encoder_meta.get("step"),
        best_probe_mae=probe.best_mae if probe and probe.history else encoder_meta.get("probe_mae"),
        init_probe_mae=probe.history[0][1] if probe and probe.history and probe.history[0][0] == 0
        else None,
        collapse_suspected=run.data.tags.get("collapse") == "suspected",
        metrics=dict(run.data.metrics), manifest=manifest, molecules_used=molecules_used)
