"""StudyConfig: what a ``molpre study`` measures, as plain nested dataclasses from YAML.

Unknown keys are rejected at every depth with the section named; ``--set a.b=value``
overrides parse their value as YAML. Layout (see pipelines/qm9_sample.yaml)::

    name, data, target, unit, out, experiment
    split:     {kind: permutation | random | scaffold, test_size, seed}
    budgets:   [100, 300, 1000];  seeds: {small: 5, large: 3, small_max: 300}
    scratch:   true
    encoders:  [{name, path, modes: [full], control: [full], seed}]
    baselines: [linear, krr];  krr: {sigmas, lambdas, folds}
    train:     {preset, epochs, batch_size, lr, patience, max_minutes, val_fraction, val_min}
    audit:     {probe_leak: error | warn, drop_level: block}
    workers:   1
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from molpre.config import ConfigError, check_keys, field_types


class StudyConfigError(ValueError):
    """An invalid study configuration; the message names the key."""


@dataclass
class SplitSpec:
    """The fixed test split. permutation: the first ``test_size`` rows of
    ``default_rng(seed).permutation(n_rows)``; random: ``test_size`` random molecules;
    scaffold: whole Bemis-Murcko scaffold groups (seeded order) up to ``test_size``."""

    kind: str = "permutation"
    test_size: int = 1000
    seed: int = 0


@dataclass
class SeedSpec:
    """``small`` seeds at budgets <= ``small_max``, ``large`` above."""

    small: int = 5
    large: int = 3
    small_max: int = 300

    def count(self, budget: int) -> int:
        return self.small if budget <= self.small_max else self.large


@dataclass
class EncoderSpec:
    """A pretrained encoder: ``path`` is a ``molpre pretrain`` OUTDIR (encoder.pt, run.json,
    shards/) or an encoder.pt. modes: finetuning paths (probe, full, prior). control: the
    modes also run from the untrained encoder with the pretraining run's initialization
    (``seed`` = the pretraining seed; read from the pretraining run when null)."""

    name: str = "pretrained"
    path: str = ""
    modes: list[str] = field(default_factory=lambda: ["full"])
    control: list[str] = field(default_factory=lambda: ["full"])
    seed: int | None = None
    corpus: str | None = None  # shard dir or molecule file for the audit (default OUTDIR/shards)


@dataclass
class KrrSpec:
    """Kernel ridge regression on FCHL19: sigma and lambda chosen by k-fold CV in the budget."""

    sigmas: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    lambdas: list[float] = field(default_factory=lambda: [1e-10, 1e-8, 1e-6, 1e-4])
    folds: int = 5


@dataclass
class TrainSpec:
    """Finetuning settings shared by every neural arm. The validation set (early stopping,
    LR plateau, the prior's strength) is ``max(val_fraction, val_min / N)`` of the budget's
    molecules: never fewer than ``val_min`` (a 10-molecule validation set once stopped a
    run at epoch 5, at the per-element baseline). A child whose test MAE is not below
    ``(1 - fail_margin)`` x the per-element baseline of its own labels is flagged failed
    (that run: 20.88 vs 21.19 kcal/mol, 1.5% better: it had learned nothing)."""

    preset: str = "small"
    epochs: int = 300
    batch_size: int = 16
    lr: float = 5e-3
    patience: int = 40
    max_minutes: float | None = 10.0
    val_fraction: float = 0.1
    val_min: int = 20
    fail_margin: float = 0.1
    dtype: str = "float32"


@dataclass
class AuditSpec:
    """probe_leak: ``error`` refuses a pretraining probe set drawn from the test split."""

    probe_leak: str = "error"


@dataclass
class StudyConfig:
    name: str = "study"
    data: str = ""
    target: str = "energy"
    unit: str = "eV"
    out: str = "study-out"
    experiment: str = "molpre-study"
    split: SplitSpec = field(default_factory=SplitSpec)
    budgets: list[int] = field(default_factory=lambda: [100, 300, 1000])
    seeds: SeedSpec = field(default_factory=SeedSpec)
    scratch: bool = True
    encoders: list[EncoderSpec] = field(default_factory=list)
    baselines: list[str] = field(default_factory=lambda: ["linear", "krr"])
    krr: KrrSpec = field(default_factory=KrrSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    audit: AuditSpec = field(default_factory=AuditSpec)
    workers: int = 1

    def validate(self) -> StudyConfig:
        if not self.data:
            raise StudyConfigError("data: give a label file (extxyz or .db)")
        if self.split.kind not in ("permutation", "random", "scaffold"):
            raise StudyConfigError(f"split.kind {self.split.kind!r}: permutation, random or scaffold")
        if not self.budgets or sorted(self.budgets) != list(self.budgets) or min(self.budgets) < 4:
            raise StudyConfigError("budgets: an increasing list of label counts >= 4")
        for b in self.baselines:
            if b not in ("linear", "krr"):
                raise StudyConfigError(f"baselines: unknown {b!r} (linear, krr)")
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names) or "scratch" in names:
            raise StudyConfigError("encoders: names must be unique and not 'scratch'")
        for e in self.encoders:
            if not e.path:
                raise StudyConfigError(f"encoders.{e.name}.path: give a pretrain OUTDIR or encoder.pt")
            for m in [*e.modes, *e.control]:
                if m not in ("probe", "full", "prior"):
                    raise StudyConfigError(f"encoders.{e.name}: mode {m!r} (probe, full, prior)")
        if self.audit.probe_leak not in ("error", "warn"):
            raise StudyConfigError("audit.probe_leak: error or warn")
        if self.workers < 1:
            raise StudyConfigError("workers must be >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, recursing into dataclass-typed fields."""
    if not isinstance(data, dict):
        raise StudyConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    try:
        check_keys(data, field_types(cls), where.rstrip("."))
    except ConfigError as err:
        raise StudyConfigError(str(err)) from None
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        hint = hints[key]
        inner = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{where}{key}.")
        elif inner and dataclasses.is_dataclass(inner[0]) and typing.get_origin(hint) is list:
            values[key] = [_build(inner[0], v, f"{where}{key}[{i}].") for i, v in enumerate(value)]
        else:
            values[key] = value
    try:
        return cls(**values)
    except TypeError as err:
        raise StudyConfigError(f"{where or 'study'}: {err}") from None


def set_dotted(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b=value`` (value parsed as YAML) to a raw config dict, in place."""
    if "=" not in assignment:
        raise StudyConfigError(f"--set {assignment!r}: expected key=value")
    path, text = assignment.split("=", 1)
    *parents, leaf = path.strip().split(".")
    node = raw
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise StudyConfigError(f"--set {assignment!r}: {name} is not a section")
    node[leaf] = yaml.safe_load(text)


def load_study_config(path: str | Path | None = None, overrides: list[str] | tuple = (),
                      raw: dict[str, Any] | None = None) -> StudyConfig:
    """Defaults <- YAML file (or ``raw``) <- ``--set`` overrides, validated.

    Relative ``data`` / encoder paths in a file are read relative to the working directory
    (like every molpre pipeline).
    """
    data = dict(raw or {})
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise StudyConfigError(f"study config not found: {p}")
        loaded = yaml.safe_load(p.read_text()) or {}
        data = dict(loaded.get("study", loaded))
    data.pop("pipeline", None)
    for assignment in overrides:
        set_dotted(data, assignment)
    return _build(StudyConfig, data, "").validate()
