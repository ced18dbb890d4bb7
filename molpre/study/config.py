"""StudyConfig: what a ``molpre study`` measures, nested frozen dataclasses on molpre.config.

Loaded by :func:`molpre.config.load_config` (a ``study:`` section or top-level keys, then
``--set a.b=value`` overrides read as YAML, then flags): unknown and mistyped keys are named
by their full dotted path at any depth (``train.epoch`` -> did you mean ``train.epochs``;
``encoders[0].modes[1]: expected one of ['probe', 'full', 'prior']``). Layout (see
pipelines/qm9_sample.yaml)::

    name, data, target, unit, forces_key, out, experiment, workers
    target:    energy | u0_atom | {name: energy, key: energy_ev, unit: eV}  (molpre.targets.keys)
    split:     {kind: permutation | random | scaffold, test_size, seed}
    budgets:   [100, 300, 1000];  seeds: {small: 5, large: 3, small_max: 300}
    scratch:   true
    encoders:  [{name, path, modes: [full], control: [full], seed, corpus, head, budgets,
                 control_of, train: {lr, ...}}]
    baselines: null (the target kind's: [linear, krr] or [mean, krr]);  krr: {sigmas, lambdas, folds}
    train:     {preset, epochs, batch_size, lr, loss, forces_weight, patience, max_minutes,
                ensemble, ema_decay, anneal, val_fraction, dtype: FinetuneConfig's,
                overridden; val_min, fail_margin}
    audit:     {probe_leak: error | warn}
    probes:    {enabled, max_train, folds}
    delta:     {level: gfn2-xtb | data: [cheap-level stores], scale: null}   (delta learning)
    teach:     {study: OUTDIR of a finished study, arms: null | [arm, ...], budgets: null,
                extra: null | molecule file, extra_max: null | N, untaught: true}
               (taught arms ``<arm>+taught``, molpre.study.teaching)
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click

from molpre.config import ConfigError, coerce, load_config, override_of, setting, to_dict
from molpre.targets.keys import TargetKey, target_text
from molpre.train.finetune_config import FinetuneConfig

Mode = Literal["probe", "full", "prior"]


class StudyConfigError(ConfigError):
    """An invalid study configuration; the message names the key."""


@dataclass(frozen=True)
class SplitSpec:
    """The fixed test split. permutation: the first ``test_size`` rows of
    ``default_rng(seed).permutation(n_rows)``; random: ``test_size`` random molecules;
    scaffold: whole Bemis-Murcko scaffold groups (seeded order) up to ``test_size``."""

    kind: Literal["permutation", "random", "scaffold"] = setting(
        "permutation", help="permutation (the shared QM9 protocol), random or scaffold.")
    test_size: int = setting(1000, help="Test molecules.")
    seed: int = setting(0, help="Seed of the test split.")

    def __post_init__(self) -> None:
        if self.test_size < 1:
            raise ValueError(f"test_size must be >= 1, got {self.test_size}")


@dataclass(frozen=True)
class SeedSpec:
    """``small`` seeds at budgets <= ``small_max``, ``large`` above."""

    small: int = setting(5, help="Seeds at budgets <= small_max.")
    large: int = setting(3, help="Seeds above small_max.")
    small_max: int = 300

    def __post_init__(self) -> None:
        if self.small < 1 or self.large < 1:
            raise ValueError("small and large must be >= 1")

    def count(self, budget: int) -> int:
        return self.small if budget <= self.small_max else self.large


@dataclass(frozen=True)
class EncoderSpec:
    """A pretrained encoder: ``path`` is a ``molpre pretrain`` OUTDIR (encoder.pt, run.json,
    shards/) or an encoder.pt. modes: finetuning paths (probe, full, prior). control: the
    modes also run from the untrained encoder with the pretraining run's initialization
    (``seed`` = the pretraining seed; read from the pretraining run when null). budgets:
    the study budgets at which this encoder's arms run (null: every budget). head: the energy
    head its arms (and its control, from the pretraining run's step-0 head) start from:
    ``fresh`` or ``pretrained`` (the cheap-level head of ``--objectives cheap_energy``).
    train: finetuning settings of this encoder's arms *and its controls* in place of the
    study's ``train:`` (``ENCODER_TRAIN_FIELDS``: lr, epochs, batch_size, patience,
    max_minutes, ema_decay, anneal), so that a pretrained start and its random-init control follow
    the same path; the split (val_fraction, val_min) stays the study's, so every arm is
    paired on the same molecules. Choose these on a development set, never the test set."""

    name: str = "pretrained"
    path: str = setting("", help="A molpre pretrain OUTDIR or encoder.pt.")
    modes: list[Mode] = setting(default_factory=lambda: ["full"])
    control: list[Mode] = setting(default_factory=lambda: ["full"])
    seed: int | None = None
    corpus: str | None = None  # shard dir or molecule file for the audit (default OUTDIR/shards)
    budgets: list[int] | None = None  # run this encoder's arms at these budgets only (None: all)
    control_of: str | None = None  # compare with that encoder's control arms (same init)
    head: Literal["fresh", "pretrained"] = "fresh"
    train: dict[str, Any] = setting(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError(f"path: give encoder {self.name!r} a pretrain OUTDIR or encoder.pt")
        if self.name == "scratch" or not self.name:
            raise ValueError(f"name {self.name!r}: give the encoder another name")
        unknown = sorted(set(self.train) - set(ENCODER_TRAIN_FIELDS))
        if unknown:
            raise ValueError(f"train: {unknown[0]!r} cannot differ per encoder; one of "
                             f"{list(ENCODER_TRAIN_FIELDS)} (the split stays the study's)")
        object.__setattr__(self, "train", _typed_train(self.train, f"encoders.{self.name}.train"))


@dataclass(frozen=True)
class KrrSpec:
    """Kernel ridge regression on FCHL19: sigma and lambda chosen by k-fold CV in the budget."""

    sigmas: list[float] = setting(default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    lambdas: list[float] = setting(default_factory=lambda: [1e-10, 1e-8, 1e-6, 1e-4])
    folds: int = 5

    def __post_init__(self) -> None:
        if not self.sigmas or not self.lambdas or self.folds < 2:
            raise ValueError("give sigmas and lambdas, and folds >= 2")


@dataclass(frozen=True)
class StudyTraining:
    """What a study adds to finetuning (see :data:`TrainSpec`)."""

    val_min: int = setting(20, help="Fewest validation molecules of a neural child.")
    fail_margin: float = setting(0.1, help="A child not (1 - fail_margin) x better than the "
                                           "per-element baseline is flagged failed (a negative margin "
                                           "loosens the flag).")

    def __post_init__(self) -> None:
        if self.val_min < 1:
            raise ValueError("val_min must be >= 1")
        if not self.fail_margin < 1:
            raise ValueError("fail_margin must be < 1 (at 1 every child would be flagged)")


def _typed_train(values: dict[str, Any], where: str) -> dict[str, Any]:
    """An encoder's ``train:`` values read as the study's ``train:`` section reads them
    (``lr: 5e-4`` is a string to YAML: a float here); ConfigError names a bad one."""
    types = typing.get_type_hints(TrainSpec)
    return {key: coerce(value, types[key], f"{where}.{key}") for key, value in values.items()}


#: The ``train:`` fields an encoder may set for its own arms and controls (not the split).
ENCODER_TRAIN_FIELDS = ("lr", "epochs", "batch_size", "patience", "max_minutes", "ema_decay",
                        "anneal")
#: FinetuneConfig fields a study's ``train:`` section may set for every neural child.
TRAIN_FIELDS = ("preset", "epochs", "batch_size", "lr", "loss", "forces_weight", "patience",
                "max_minutes", "ensemble", "ema_decay", "anneal", "val_fraction", "dtype",
                "compile", "refit_atomref", "committee_folds")
#: The study's own defaults for them (longer training, a wall-clock cap per child).
TRAIN_DEFAULTS = {"epochs": 300, "lr": 5e-3, "patience": 40, "max_minutes": 10.0}

TrainSpec = override_of(
    FinetuneConfig, TRAIN_FIELDS, name="TrainSpec", defaults=TRAIN_DEFAULTS,
    bases=(StudyTraining,), doc="""Finetuning settings shared by every neural arm: an override of
    :class:`molpre.train.finetune_config.FinetuneConfig` (its fields ``TRAIN_FIELDS``, declared
    and validated there, with the study's defaults ``TRAIN_DEFAULTS``), plus ``val_min`` and
    ``fail_margin``. The validation set (early stopping, LR plateau, the prior's strength) is
    ``max(val_fraction, val_min / N)`` of the budget's molecules: never fewer than
    ``val_min`` (a 10-molecule validation set once stopped a run at epoch 5, at the
    per-element baseline). A child whose test MAE is not below ``(1 - fail_margin)`` x the
    per-element baseline of its own labels is flagged failed (that run: 20.88 vs 21.19
    kcal/mol, 1.5% better: it had learned nothing). ``ensemble`` K > 1 makes every neural
    child a committee of K members (seeds seed..seed+K-1 on the child's split, sharing
    ``max_minutes``) scored by its mean; ``ema_decay`` trains every child with an
    exponential moving average of its weights; ``anneal`` cools each child's lr down over
    the last fraction of its budget instead of plateau halving and early stopping; ``loss``
    (mse or l1) is every arm's, so no arm trains on another penalty than its references.""")


@dataclass(frozen=True)
class AuditSpec:
    """probe_leak: ``error`` refuses a pretraining probe set drawn from the test split."""

    probe_leak: Literal["error", "warn"] = "error"


@dataclass(frozen=True)
class ProbeSpec:
    """Linear (ridge) and sparse (L1, LassoCV) probes of each encoder's frozen embeddings:
    fit on the training pool (every non-test molecule, at most ``max_train``), scored on the
    test set. ``folds``: cross-validation folds choosing the penalties (training pool only)."""

    enabled: bool = setting(True, help="Probe each encoder's frozen embeddings.")
    max_train: int | None = None
    folds: int = 5

    def __post_init__(self) -> None:
        if self.folds < 2 or (self.max_train is not None and self.max_train < 10):
            raise ValueError("folds must be >= 2 and max_train >= 10")


@dataclass(frozen=True)
class DeltaSpec:
    """Delta learning on a cheap level (molpre.delta): every arm, baselines included, learns
    ``target - s * E_cheap`` and is scored on the target itself. ``level``: a cheap level
    (``gfn2-xtb``, ``mmff94``, ``hf/sto-3g``) the study computes once for every molecule
    (test set included: a delta model needs the cheap level wherever it predicts) into
    OUT/cheap-<level>.db; or ``data``: label stores or extxyz files already holding it.
    Neither: off. ``scale``: s; null fits it with per-element constants on each child's
    training labels (never the test set)."""

    level: str | None = setting(None, help="A cheap level computed for every molecule.")
    data: list[str] = setting(default_factory=list,
                              help="Cheap-level label stores/extxyz (all molecules); [] = off.")
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.level and self.data:
            raise ValueError("delta: give a level or data (its stores), not both")
        if self.level:
            from molpre.qc.levels import parse_level

            parse_level(self.level)  # LevelError (a ValueError) names a bad level now

    @property
    def enabled(self) -> bool:
        return bool(self.data) or bool(self.level)


@dataclass(frozen=True)
class TeachSpec:
    """Taught arms (molpre.study.teaching): each listed arm runs again as ``<arm>+taught``,
    trained on its N labels plus the labels that the same arm, budget and seed of another,
    finished study (``study``: its OUTDIR, typically a delta study of the same data, target
    and split) gives the pool molecules nobody labeled. The student is plain: it needs
    nothing cheap at prediction time. ``arms``: the arms taught (null: every neural arm);
    ``budgets``: where (null: every budget)."""

    study: str | None = setting(None, help="OUTDIR of the teaching study; null: no taught arms.")
    arms: list[str] | None = None
    budgets: list[int] | None = None
    extra: str | None = setting(
        None, help="Molecules beyond the study's data for the teacher to label as well "
        "(extxyz or .db, one geometry each; audited against the study's molecules, "
        "molpre.study.teach_extra); null: the pool only.")
    extra_max: int | None = setting(None, help="Use the first N audited extra molecules "
                                    "(null: all).")
    untaught: bool = setting(True, help="Also run the untaught arms that are taught (false: "
                             "only their taught copies, when the untaught ones were measured "
                             "in another parent).")

    @property
    def enabled(self) -> bool:
        return bool(self.study)


@dataclass(frozen=True)
class StudyConfig:
    """A study: labeled data, a fixed test split, nested budgets x seeds x arms."""

    name: str = setting("study", help="Study name (parent run 'study NAME').")
    data: str = setting("", help="Labels: extxyz(.gz) or an ASE .db label store.")
    target: str | TargetKey = setting(
        "energy", help="A registered target (energy, gap, dipole, ...) or data key (u0_atom, "
        "mu, ...), molpre.targets; a key of your file: {name: energy, key: energy_ev, unit: eV}.")
    unit: str | None = setting(None, help="Stored unit of the target (None: the registry's "
                               "for the file's convention, as finetune).")
    forces_key: str | None = None  # atoms.arrays key of forces (energy unit per Angstrom)
    out: str = setting("study-out", flags=("-o", "--out"), click_type=click.Path(),
                       help="OUTDIR: summary.json, report.md/.html, learning_curve.png, children/.")
    experiment: str = setting("molpre-study", help="MLflow experiment.")
    split: SplitSpec = setting(default_factory=SplitSpec)
    budgets: list[int] = setting(default_factory=lambda: [100, 300, 1000])
    seeds: SeedSpec = setting(default_factory=SeedSpec)
    scratch: bool = True
    encoders: list[EncoderSpec] = setting(default_factory=list)
    baselines: list[Literal["linear", "mean", "krr"]] | None = setting(
        None, help="Baseline arms: linear (per-element fit, extensive targets), mean (training "
        "mean), krr (on what the target kind's baseline leaves); null: the kind's and krr.")
    krr: KrrSpec = setting(default_factory=KrrSpec)
    train: TrainSpec = setting(default_factory=TrainSpec)
    audit: AuditSpec = setting(default_factory=AuditSpec)
    probes: ProbeSpec = setting(default_factory=ProbeSpec)
    delta: DeltaSpec = setting(default_factory=DeltaSpec)
    teach: TeachSpec = setting(default_factory=TeachSpec)
    workers: int = setting(1, click_type=click.IntRange(min=1),
                           help="Children run at once (one torch thread each).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", target_text(self.target))
        if not self.budgets or sorted(set(self.budgets)) != list(self.budgets) \
                or min(self.budgets) < 4:
            raise ValueError(f"budgets: an increasing list of label counts >= 4, got {self.budgets}")
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names):
            raise ValueError(f"encoders: names must be unique, got {names}")
        by_name = {e.name: e for e in self.encoders}
        for e in self.encoders:
            try:  # the encoder's settings, checked as the study's train: section is
                dataclasses.replace(self.train, **e.train)
            except (ValueError, TypeError) as err:  # TypeError: a value of the wrong type
                raise ValueError(f"encoders: {e.name}.train {e.train}: {err}") from None
            if e.control_of is None:
                continue
            other = by_name.get(e.control_of)
            if other is None or other is e:
                raise ValueError(f"encoders: {e.name}.control_of {e.control_of!r} must name "
                                 f"another encoder of the study ({names})")
            if e.train != other.train:
                raise ValueError(f"encoders: {e.name}.control_of {other.name!r}: their train "
                                 "settings differ, so the control would not follow the same path")
            if None not in (e.seed, other.seed) and e.seed != other.seed:
                raise ValueError(f"encoders: {e.name}.control_of {other.name!r}: pretraining "
                                 f"seeds differ ({e.seed} vs {other.seed}), so the initial "
                                 "weights do")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        self._check_teach()

    def _check_teach(self) -> None:
        """A taught arm must name an arm of this energy-or-property study (plain or delta)
        without forces, at the study's budgets."""
        t = self.teach
        if not t.enabled:
            if t.arms is not None or t.budgets is not None:
                raise ValueError("teach: give study (the teaching study's OUTDIR) with arms or budgets")
            if t.extra is not None or t.extra_max is not None:
                raise ValueError("teach: give study (the teaching study's OUTDIR) with extra")
            return
        if t.extra_max is not None and t.extra_max < 1:
            raise ValueError(f"teach.extra_max: a count >= 1 or null, got {t.extra_max}")
        if t.extra_max is not None and not t.extra:
            raise ValueError("teach.extra_max: give teach.extra (the molecule file) too")
        if self.forces_key:
            raise ValueError("teach: a study with forces cannot be taught yet (the teacher "
                             "labels energies only); drop forces_key")
        from molpre.study.plan import TAUGHT, arms

        names = [a.arm for a in arms(self) if not a.taught]
        wrong = [a for a in (t.arms or []) if a not in names]
        if wrong:
            raise ValueError(f"teach.arms: {wrong[0]!r} is not an arm of this study; one of {names}")
        if any(a.endswith(TAUGHT) for a in names):
            raise ValueError(f"encoders: a name may not end with {TAUGHT!r}")
        extra = sorted(set(t.budgets or []) - set(self.budgets))
        if extra:
            raise ValueError(f"teach.budgets: {extra} are not budgets of the study ({self.budgets})")

    def validate(self) -> StudyConfig:
        """Checks that need more than the keys' types (a study must name its data and a
        target it can score, with baselines that fit the target's kind)."""
        if not self.data:
            raise StudyConfigError("data: give a label file (extxyz or .db), e.g. --data or "
                                   "data: in the YAML")
        spec = self.spec()
        fit = list(dict.fromkeys((spec.kind.prior_name, "mean", "krr")))
        wrong = [b for b in self.baseline_arms() if b not in fit]
        if wrong:
            raise StudyConfigError(
                f"baselines: {wrong[0]!r} does not fit target {self.target!r} (kind "
                f"{spec.kind.name}); use {', '.join(fit[:-1])} or {fit[-1]}")
        return self

    def spec(self):
        """The TargetSpec the study scores (StudyConfigError for an unknown target or unit)."""
        from molpre.targets import TargetError, parse_targets

        try:
            specs = parse_targets(self.target, self.unit)
        except TargetError as err:
            raise StudyConfigError(f"target: {err}") from None
        if len(specs) != 1:
            raise StudyConfigError(f"target: a study scores one target, got {self.target!r}")
        return specs[0]

    def baseline_arms(self) -> list[str]:
        """The baseline arms: ``baselines``, or the target kind's prior and ``krr``."""
        if self.baselines is not None:
            return list(self.baselines)
        return [self.spec().kind.prior_name, "krr"]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)


#: StudyConfig fields that ``molpre study`` offers as options (any key via --set).
CLI_FIELDS = ("data", "out", "experiment", "workers")


def load_study_config(path: str | Path | None = None, overrides: list[str] | tuple = (),
                      raw: dict[str, Any] | None = None, **flags: Any) -> StudyConfig:
    """Defaults <- YAML file (a ``study:`` section or top-level keys) or ``raw`` <- ``--set``
    overrides <- ``flags`` (dotted keys), validated; StudyConfigError names the key.

    Relative ``data`` / encoder paths in a file are read relative to the working directory
    (like every molpre pipeline).
    """
    if path is not None and not Path(path).is_file():
        raise StudyConfigError(f"study config not found: {path}")
    source = raw if path is None else path
    try:
        config = load_config(StudyConfig, source, list(overrides), section="study", **flags)
    except StudyConfigError:
        raise
    except ConfigError as err:
        raise StudyConfigError(str(err)) from None
    return config.validate()
