"""Pretrained encoders of a study and their random-init controls.

The control starts from the pretraining run's own initialization: ``molpre pretrain`` seeds
everything with its config seed and builds the encoder first, so
``seed_everything(seed); Encoder(config)`` rebuilds its step-0 weights exactly
(tests/unit/study/test_encoders.py checks this against a real pretraining run). A gain the
control shows too is a difference in starting weights, not pretraining.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from molpre.data.shards import MOLECULES
from molpre.models.encoder import Encoder, EncoderConfig, load_encoder, save_encoder
from molpre.runtime import seed_everything
from molpre.study.config import EncoderSpec, StudyConfig, StudyConfigError

log = logging.getLogger(__name__)


@dataclass
class PreparedEncoder:
    """Paths and provenance of one pretrained encoder and its control."""

    name: str
    encoder_path: Path
    control_path: Path | None
    run_id: str | None
    model_uri: str | None
    seed: int | None
    corpus: Path | None
    probe_data: str | None = None
    probe_limit: int = 500
    relative_change: float | None = None  # ||w - w0|| / ||w0|| of the encoder weights
    corpus_limit: int | None = None  # the run's corpus.max_molecules: it read mol_index < this


def initial_encoder(config: EncoderConfig | dict, seed: int) -> Encoder:
    """The encoder ``molpre pretrain`` starts from with this config and seed (step-0 weights)."""
    seed_everything(seed)
    return Encoder(config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(config))


def initial_heads(config: EncoderConfig, seed: int, pretrained: Encoder) -> tuple[dict, dict]:
    """``(heads, meta)`` of the pretraining run's step 0, for a control whose arms start from
    the pretrained head: the pretraining module rebuilt from its objectives (recorded in the
    encoder checkpoint) after ``seed_everything(seed)``, as ``molpre pretrain`` builds it;
    ``({}, {})`` when the pretrained encoder carries no head."""
    meta = getattr(pretrained, "checkpoint_meta", {})
    if "energy_head" not in meta or "objectives" not in meta:
        return {}, {}
    from molpre.train.pretrain_module import PretrainModule

    seed_everything(seed)
    module = PretrainModule(config.to_dict(), meta["objectives"])
    module.label_level = meta["energy_head"].get("level")
    return module.transferable()


def relative_change(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """``||w_a - w_b|| / ||w_b||`` over all floating-point weights (0 = identical)."""
    num = den = 0.0
    for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        if x.is_floating_point():
            num += float(((x.double() - y.double()) ** 2).sum())
            den += float((y.double() ** 2).sum())
    return (num / max(den, 1e-300)) ** 0.5


def _run_record(path: Path) -> tuple[Path, dict]:
    """(encoder.pt, run.json content or {}) for an OUTDIR or an encoder file."""
    outdir = path if path.is_dir() else path.parent
    encoder = path / "encoder.pt" if path.is_dir() else path
    if not encoder.is_file():
        raise StudyConfigError(f"encoder checkpoint not found: {encoder}")
    record = outdir / "run.json"
    return encoder, json.loads(record.read_text()) if record.is_file() else {}


def _run_params(run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    import mlflow

    try:
        return dict(mlflow.MlflowClient().get_run(run_id).data.params)
    except Exception as err:  # noqa: BLE001 - a run in another store: provenance only
        log.warning("pretraining run %s not found in this tracking store (%s)", run_id, err)
        return {}


def shared_start_warnings(config: StudyConfig, encoders: dict[str, PreparedEncoder]) -> list[str]:
    """One line per encoder whose random-init control starts from a scratch arm's weights.

    Scratch seed ``s`` builds the encoder after ``seed_everything(s)``, the control after
    ``seed_everything(pretraining seed)``: equal seeds make that pair one run twice, and
    its paired difference a zero that narrows the interval. Pretrain with a seed outside
    the study's finetune seeds (0 .. k-1).
    """
    if not config.scratch:
        return []
    seeds = max(config.seeds.count(b) for b in config.budgets)
    lines = []
    for spec in config.encoders:
        seed = encoders[spec.name].seed
        if (spec.control or spec.control_of) and seed is not None and 0 <= seed < seeds:
            lines.append(f"encoders.{spec.name}: pretraining seed {seed} is also a finetune seed "
                         f"(0..{seeds - 1}): its control and scratch seed {seed} start from the "
                         "same weights, so that pair's difference is not a measurement; "
                         f"pretrain with a seed >= {seeds}")
    return lines


def prepare_encoder(spec: EncoderSpec, out: Path) -> PreparedEncoder:
    """Locate the encoder, read its pretraining run, write the control's initial weights."""
    encoder_path, record = _run_record(Path(spec.path))
    run_id = record.get("run_id")
    params = _run_params(run_id)
    seed = spec.seed if spec.seed is not None else (int(params["seed"]) if "seed" in params else None)
    pretrained = load_encoder(encoder_path)
    control_path, change = None, None
    if spec.control:
        if seed is None:
            raise StudyConfigError(f"encoders.{spec.name}.seed: the pretraining seed is needed "
                                   "for the control (no run.json / MLflow run to read it from)")
        init = initial_encoder(pretrained.config, seed).to(next(pretrained.parameters()).dtype)
        change = relative_change(pretrained, init)
        heads, head_meta = initial_heads(pretrained.config, seed, pretrained)
        control_path = out / "encoders" / f"{spec.name}-init-seed{seed}.pt"
        control_path.parent.mkdir(parents=True, exist_ok=True)
        save_encoder(init, control_path, meta={**head_meta, "selected_by": "init",
                                               "pretrain_seed": seed, "pretrain_run_id": run_id},
                     heads=heads)
    outdir = encoder_path.parent
    corpus = Path(spec.corpus) if spec.corpus else (
        outdir / "shards" if (outdir / "shards").is_dir() else
        (Path(params["corpus.shards"]) if params.get("corpus.shards") not in (None, "", "null") else None))
    if corpus is not None and not spec.corpus and not corpus.is_absolute() \
            and not (corpus / MOLECULES).is_file():
        raise StudyConfigError(
            f"encoders.{spec.name}: its pretraining run recorded the relative corpus path "
            f"{corpus}, which is no shard directory from here ({Path.cwd()}): set "
            f"encoders.{spec.name}.corpus to that shard directory (or run from where it was)")
    probe = _param(params.get("probe.data"))
    return PreparedEncoder(
        spec.name, encoder_path.resolve(), control_path.resolve() if control_path else None,
        run_id, f"runs:/{run_id}/checkpoints/encoder.pt" if run_id else None, seed, corpus,
        probe,
        int(params.get("probe.max_molecules", 500) or 500), change,
        corpus_limit=None if spec.corpus else _int(_param(params.get("corpus.max_molecules"))))


def _param(value: str | None) -> str | None:
    """An MLflow param, None where it was unset (params are strings: '', 'null', 'None')."""
    return value if value not in (None, "", "null", "None") else None


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)
