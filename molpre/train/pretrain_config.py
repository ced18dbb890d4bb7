"""The pretraining config: nested frozen dataclasses, loaded by :mod:`molpre.config`.

A user's YAML (``pipelines/pretrain.yaml``: a ``pretrain:`` section, or the keys at top level)
states only what differs from the defaults below; ``--set train.lr=3e-4`` style overrides
parse their value as YAML. Every key at every depth is checked (an unknown key or a wrong
type is a ConfigError naming the dotted key). :func:`molpre.train.pretrain.pretrain` reads the typed
config to the end (:func:`resolve` gives it as a nested dict, for logs and old callers).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from molpre.config import (
    ConfigError,
    check_keys,
    coerce,
    field_types,
    load_config,
    setting,
    to_dict,
)


@dataclass(frozen=True)
class CorpusConfig:
    """The pretraining corpus: molecules, their conformer shards and (``level``) the cheap
    labels attached as the shards are built."""

    path: str | None = setting(None, flags=("--corpus",),
                               click_type=click.Path(exists=True, dir_okay=False),
                               help="Molecule file (SMILES/CSV/SDF/XYZ). Default: RDKit's NCI sample.")
    smiles_col: str | None = None
    max_molecules: int | None = setting(
        None, click_type=click.IntRange(min=1),
        help="Use the first M molecules of the corpus or of --shards (default: all).")
    conformers: int = setting(2, click_type=click.IntRange(min=1), help="Conformers per molecule.")
    level: str | None = setting(
        "gfn2-xtb", flags=("--label-level",),
        help="Label every conformer (and displaced copy) of a corpus built here at this cheap "
             "level (gfn2-xtb, gfn1-xtb, mmff94, hf/sto-3g: energies and forces), for the "
             "cheap_energy / cheap_forces objectives; none: an unlabeled corpus (for mask, "
             "contrast, denoise).")
    copies: int = setting(1, click_type=click.IntRange(min=0),
                          help="Displaced copies of each conformer (off-equilibrium forces).")
    sigma: float = 0.05  # Angstrom per coordinate of a displaced copy
    workers: int = 1
    shard_size: int = 1000
    shards: str | None = setting(None, flags=("--shards",),
                                 click_type=click.Path(exists=True, file_okay=False),
                                 help="Use an existing shard directory instead of building one.")
    val_shards: int | None = setting(
        None, click_type=click.IntRange(min=0),
        help="Shards held out for validation (every objective's loss on them). Default: 1 when "
             "the corpus has at least 4 shards, else 0.")

    def __post_init__(self) -> None:
        if isinstance(self.level, str) and self.level.strip().lower() in ("", "none", "null", "off"):
            object.__setattr__(self, "level", None)  # --label-level none: an unlabeled corpus


@dataclass(frozen=True)
class ModelConfig:
    """Encoder preset plus EncoderConfig field overrides (e.g. ``{cutoff: 4.0}``)."""

    preset: str = setting("small", click_type=click.Choice(["small", "medium"]),
                          help="Encoder preset.")
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from molpre.models.encoder import EncoderConfig

        types_ = field_types(EncoderConfig)
        check_keys(self.overrides, types_, "model.overrides")
        checked = {k: coerce(v, types_[k], f"model.overrides.{k}") for k, v in self.overrides.items()}
        object.__setattr__(self, "overrides", checked)


def default_objectives() -> dict[str, dict[str, Any]]:
    """The built-in objectives with their default options (weight 0 switches one off).

    On by default: the recipe that paid on the QM9 protocol (bench/results/qm9_xtb), cheap
    GFN2-xTB energies and forces; the label-free objectives are off (on the QM9 sample they
    added 1.2-1.6x at most on top of a delta baseline, and their frozen embeddings probed
    worse than random init on held-out NCI molecules)."""
    return {
        "cheap_energy": {"weight": 1.0},
        "cheap_forces": {"weight": 1.0},
        "mask": {"weight": 0.0, "fraction": 0.15, "coord_noise": 0.0},
        "contrast": {"weight": 0.0, "temperature": 0.1, "proj_dim": 64},
        "denoise": {"weight": 0.0, "sigma": 0.05},
    }


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the Lightning trainer."""

    batch_size: int = setting(16, click_type=click.IntRange(min=2), help="Molecules per batch.")
    lr: float = 1e-3
    anneal: float = setting(0.0, click_type=click.FloatRange(0.0, 1.0),
                            help="Cool the step size down over this last fraction of the run's "
                                 "budget (max_time_s and/or max_steps, counted from the start or "
                                 "resume), half a cosine from lr to lr/100; 0: constant lr.")
    weight_decay: float = 0.0
    epochs: int = setting(1, click_type=click.IntRange(min=1), help="Passes over the corpus.")
    max_steps: int = setting(-1, help="Stop after S optimizer steps (-1: no limit).")
    max_time_s: float | None = None
    devices: int = setting(1, click_type=click.IntRange(min=1),
                           help="Processes/GPUs (DDP when > 1).")
    accelerator: str = setting("auto", click_type=click.Choice(["auto", "cpu", "gpu"],
                                                                case_sensitive=False),
                               help="auto: a GPU when torch sees one, else CPU.")
    threads: int | None = setting(None, click_type=click.IntRange(min=1),
                                  help="torch threads per process.")
    compile: bool | None = setting(
        None, help="torch.compile the encoder (cheap forces in the same graph): about 2x the "
                   "steps/s after 1-2 minutes of compiling on a CPU. Default (auto): on for runs "
                   "of 2,000+ planned steps or with MOLPRE_COMPILE=1; --no-compile: never.")
    strategy: str = "auto"
    num_workers: int = 0
    shuffle_buffer: int = 256
    log_every_n_steps: int = 10
    val_every_n_steps: int = 500
    val_batches: int = 20
    grad_clip: float | None = 10.0
    checkpoint_every_n_steps: int = setting(200, flags=("--checkpoint-every",),
                                            click_type=click.IntRange(min=1),
                                            help="Write OUTDIR/last.ckpt every N steps.")
    keep_checkpoints: int = setting(2, click_type=click.IntRange(min=0),
                                    help="Periodic checkpoints kept in OUTDIR/checkpoints "
                                         "(0: last.ckpt only).")
    progress: bool | None = setting(None, help="Draw progress bars (default: only when stderr "
                                              "is a terminal, so a redirected log stays clean).")

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.anneal) <= 1.0:
            raise ConfigError(f"train.anneal must be in [0, 1], got {self.anneal}")
        if self.anneal > 0 and not (self.max_time_s or self.max_steps > 0):
            raise ConfigError("train.anneal needs a budget to cool down at the end of: set "
                              "train.max_time_s or train.max_steps")


@dataclass(frozen=True)
class MonitorConfig:
    """The collapse watch on a fixed batch of molecules."""

    every_n_steps: int = 50
    molecules: int = 128
    min_std: float = 0.05
    min_effective_rank: float = 1.5
    max_uniformity: float = -0.05
    stop_on_collapse: bool = False


@dataclass(frozen=True)
class ProbeConfig:
    """The linear-probe proxy on labeled data (off when ``data`` is null)."""

    data: str | None = setting(None, flags=("--probe-data",),
                               click_type=click.Path(exists=True, dir_okay=False),
                               help="Labeled extxyz(.gz)/ASE db for the linear-probe proxy.")
    target: str | None = setting(None, flags=("--probe-target",),
                                 help="Label key of the probe data (e.g. u0_atom).")
    every_n_steps: int = 100
    max_molecules: int = 500
    holdout: float = 0.2
    window: int = 8
    loss_drop: float = 0.05
    probe_gain: float = 0.01

    def __post_init__(self) -> None:
        if (self.data is None) != (self.target is None):
            raise ConfigError("probe.data and probe.target go together (--probe-data and "
                              "--probe-target)")


@dataclass(frozen=True)
class TrackingConfig:
    experiment: str = "molpre-pretrain"
    run_name: str = "pretrain"


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run reads. ``output``: OUTDIR (last.ckpt, encoder.pt, shards/,
    run.json); ``resume``: continue from OUTDIR/last.ckpt when present."""

    seed: int = setting(0, help="The one seed.")
    output: str | None = setting(None, flags=("-o", "--output"), required=True,
                                 click_type=click.Path(),
                                 help="OUTDIR: shards/, last.ckpt (resume), encoder.pt (best encoder).")
    resume: bool = True
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    #: registered objective name (molpre.train.objectives) -> {weight, options}; checked by
    #: the objective's own Options dataclass, so a new objective needs no edit here.
    objectives: dict[str, Any] = field(default_factory=default_objectives)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        try:
            check_objectives(self.objectives)
        except ValueError as err:
            raise ConfigError(str(err)) from None


#: PretrainConfig fields that ``molpre pretrain`` offers as options (help in the fields).
CLI_FIELDS = ("corpus.path", "corpus.shards", "corpus.conformers", "corpus.max_molecules",
              "corpus.level", "corpus.copies",
              "train.epochs", "train.max_steps", "train.anneal", "train.batch_size", "model.preset",
              "train.devices", "train.accelerator", "train.threads", "train.compile",
              "train.checkpoint_every_n_steps", "train.keep_checkpoints", "train.progress",
              "probe.data", "probe.target", "seed", "output")



def load_pretrain_config(config: Mapping[str, Any] | str | Path | None = None,
                         overrides: Iterable[str] = (), **cli_values: Any) -> PretrainConfig:
    """PretrainConfig from defaults < YAML file or dict < ``key=value`` overrides < values."""
    return load_config(PretrainConfig, config, overrides, section="pretrain", **cli_values)


def resolve(config: Mapping[str, Any] | str | Path | None = None,
            overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file or dict <- dotted overrides, validated, as a nested dict."""
    return to_dict(load_pretrain_config(config, overrides))


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (``model.overrides`` is replaced whole)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value) if key != "overrides" else dict(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_objectives(config: dict[str, Any], names: Iterable[str]) -> None:
    """Keep only ``names`` active (weight of the others set to 0; listed ones at least 1).

    A registered objective not yet in the config joins with its default options.
    """
    from molpre.train.objectives import REGISTRY, default_section

    wanted = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(wanted) - set(REGISTRY))
    if unknown or not wanted:
        raise ConfigError(f"objectives must be among {sorted(REGISTRY)}, "
                         f"got {unknown or 'none'}")
    sections = config["objectives"]
    for name in wanted:
        sections.setdefault(name, default_section(name))
    for name, section in sections.items():
        if name not in wanted:
            section["weight"] = 0.0
        elif section.get("weight", 1.0) <= 0:
            section["weight"] = 1.0


def with_objectives(config: PretrainConfig, names: Iterable[str]) -> PretrainConfig:
    """``config`` with only ``names`` active (see :func:`set_objectives`; ConfigError for an
    unknown name or none left)."""
    holder = {"objectives": copy.deepcopy(config.objectives)}
    set_objectives(holder, names)
    return dataclasses.replace(config, objectives=holder["objectives"])


def check_objectives(sections: Mapping[str, Any]) -> None:
    """ValueError naming ``objectives.<name>[.<key>]`` for an unknown objective or option,
    a mistyped value, or no objective with a weight > 0 (``sections``: the objectives
    mapping, or a whole config dict holding one)."""
    from molpre.train.objectives import active

    if isinstance(sections, Mapping) and isinstance(sections.get("train"), Mapping):
        sections = sections.get("objectives")
    if not isinstance(sections, Mapping):
        raise ValueError("objectives: expected a mapping of objective name -> settings")
    for name, section in sections.items():
        if not isinstance(section, Mapping):
            raise ValueError(f"objectives.{name}: expected a mapping (weight and options)")
    if not active(sections):
        raise ValueError("objectives: no objective has a weight > 0")


#: Every key with its default, as a nested dict.
DEFAULTS: dict[str, Any] = to_dict(PretrainConfig())
