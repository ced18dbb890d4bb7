"""FinetuneConfig: every knob of a finetune, with defaults, validated and resolvable to a dict.

The resolved dict (:meth:`FinetuneConfig.resolved`) is what an MLflow run logs as params and
what a checkpoint stores, so a model and its run can always say how they were made.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from molpre.config import ConfigError, from_dict, setting
from molpre.targets.keys import TargetKey, target_text

__all__ = ["MODES", "ConfigError", "FinetuneConfig", "CLI_FIELDS"]

MODES = ("scratch", "probe", "freeze:K", "full", "prior")
#: Loss penalties by name: the keys of :data:`molpre.targets.kinds.PENALTIES` (listed here
#: so that the CLI's help needs no torch; a test keeps the two equal).
LOSSES = ("mse", "l1")
#: Encoder presets of a scratch model (molpre.models.presets).
PRESETS = ("small", "medium")
_FREEZE = re.compile(r"^freeze:(\d+)$")
#: Force-loss weight when forces are fitted and ``forces_weight`` is not given. Both terms
#: are squared errors in units of the energy spread (eV), per molecule and per component.
DEFAULT_FORCES_WEIGHT = 10.0


def _is_energy(target: str) -> bool:
    """True when a target list names the energy (``energy`` or an energy data key)."""
    from molpre.targets import TargetError, parse_targets

    try:
        return any(spec.name == "energy" for spec in parse_targets(target))
    except TargetError:
        return False


@dataclass(frozen=True)
class FinetuneConfig:
    """A finetune: data, split, model, mode and optimisation.

    data: label file (.db label store or extxyz). target: a registered target or data key
    of molpre.targets (``energy``, ``gap``, ``u0_atom``, ...), several comma-separated
    (``energy,gap``: one head each, trained jointly), or a key of the file mapped onto a target
    (``{name: energy, key: energy_ev, unit: eV}``, molpre.targets.keys); unit: the stored unit
    of a single target (None: the registry's). forces_key: the ``atoms.arrays`` key of the
    forces (None: calculator forces or ``forces``). forces: also fit forces, weighted by forces_weight (energy term
    weighted by energy_weight); None ("auto", the default) fits them when the target includes
    ``energy`` and every training row has forces, True requires them, False never. A
    forces_weight > 0 given alone means True; 0 means False; None is DEFAULT_FORCES_WEIGHT. Split: test_fraction of molecules,
    or test_ids (file of mol_ids), or test_first (first N of default_rng(split_seed)
    .permutation(n_rows), the shared QM9 protocol); budget labels for train + val, of which
    val_fraction of the molecules validate; or split_file, a split.csv naming every part. mode: scratch | probe | freeze:K | full | prior
    (needs encoder, a checkpoint from ``molpre pretrain``, except scratch). prior_alpha: L2-SP
    strength; when None it is chosen on validation from prior_alphas. max_minutes: wall-clock
    cap on training (shared by the prior_alphas runs and the ensemble's members). ema_decay:
    an exponential moving average of the weights (None: off) that validation, early stopping
    and the saved model use. anneal: the last fraction of the budget over which lr cools
    down along half a cosine (molpre.train.anneal; 0: plateau halving and early stopping). patience:
    epochs without a better val MAE before stopping. ensemble: K > 1 trains K members (seeds
    seed..seed+K-1, one split) saved as one committee model with spreads and a calibrated
    out-of-domain check (molpre.models.committee). delta: a cheap level or its label stores
    for delta learning (molpre.delta); delta_scale: s (None: fitted on the training labels).
    loss: the penalty every loss term averages, mse (squared error) or l1 (absolute error).
    committee_folds: members k >= 1 of a committee validate on folds of their own and train
    on the rest of the budget (molpre.train.folds).
    refit_atomref: after training, shift each extensive head's atomref by the per-element fit
    of its training residuals (molpre.train.refit).
    """

    data: str = setting("", help="Labels: an ASE .db label store (status=='ok' rows) or extxyz(.gz).",
                        click_type=click.Path(exists=True, dir_okay=False))
    target: str | TargetKey = setting(
        "energy", help="A target (energy, homo, lumo, gap, dipole, alpha) or data key (u0_atom, "
                       "mu, ...; see molpre/targets/registry.py); several comma-separated: "
                       "energy,gap; a key of your file: energy=energy_ev[eV] (in YAML: target: "
                       "{name: energy, key: energy_ev, unit: eV}).")
    unit: str | None = setting(None, help="Stored unit of a single target (eV, hartree, "
                                          "kcal/mol, debye, bohr^3, ...). Default: the "
                                          "registry's for the file.")
    forces: bool | None = setting(None, help="Fit forces too (--no-forces: energies only). "
                                             "Default: auto, on when every training row "
                                             "has forces and the target includes energy.")
    forces_key: str | None = setting(None, help="Where the file keeps forces, in the energy's "
                                               "unit per Angstrom: an atoms.arrays key (e.g. "
                                               "forces_ev_a). Default: forces / calculator forces.")
    energy_weight: float = 1.0
    forces_weight: float | None = setting(
        None, click_type=click.FloatRange(min=0),
        help=f"Weight of the force loss (0: energies only). Default: {DEFAULT_FORCES_WEIGHT} "
             "when forces are fitted.")
    test_fraction: float = setting(0.1, help="Share of molecules held out for test.",
                                   click_type=click.FloatRange(0, 1, min_open=True, max_open=True))
    test_ids: str | None = setting(None, help="File of mol_ids (one per line) forming the test set.",
                                   click_type=click.Path(exists=True, dir_okay=False))
    test_first: int | None = setting(
        None, click_type=click.IntRange(min=1),
        help="Test = the first N of numpy.random.default_rng(SPLIT_SEED).permutation(n_rows) "
             "(the shared QM9 protocol with N=1000).")
    split_seed: int = setting(0, help="Seed of the test split; --seed draws the budget.")
    split_file: str | None = setting(
        None, click_type=click.Path(exists=True, dir_okay=False),
        help="A split.csv (mol_id, part: train/val/test), as a finetune or a study child "
             "writes it: exactly that split (molecules it does not list are left out); "
             "replaces test_fraction, test_ids, test_first and budget.")
    budget: int | None = setting(None, click_type=click.IntRange(min=2),
                                 help="Training labels (train + validation) drawn from the "
                                      "non-test pool. Default: all.")
    val_fraction: float = setting(0.1, help="Share of the budget's molecules used for validation.",
                                  click_type=click.FloatRange(0, 1, min_open=True, max_open=True))
    mode: str = setting("scratch", help="scratch | probe | freeze:K | full | prior.")
    encoder: str | None = setting(None, click_type=click.Path(exists=True, dir_okay=False),
                                  help="Pretrained encoder checkpoint (molpre pretrain's "
                                       "encoder.pt); needed unless scratch.")
    head: str = setting(
        "fresh", click_type=click.Choice(["fresh", "pretrained"]),
        help="The energy head: fresh, or pretrained: start it from the encoder checkpoint's "
             "cheap-level energy head (molpre pretrain --objectives cheap_energy), so the "
             "model starts out predicting the cheap level (plus the target's per-element fit).")
    preset: str = setting("small", help="Encoder preset for scratch.",
                          click_type=click.Choice(PRESETS))
    epochs: int = setting(100, help="Maximum epochs (early stopping on val MAE).",
                          click_type=click.IntRange(min=1))
    batch_size: int = setting(16, help="Molecules per batch.", click_type=click.IntRange(min=1))
    lr: float = setting(3e-3, help="Learning rate.", click_type=click.FloatRange(min=0, min_open=True))
    weight_decay: float = 0.0
    loss: str = setting(
        "mse", click_type=click.Choice(list(LOSSES)),
        help="What the loss averages over the residuals (in units of the labels' spread): "
             "mse, the squared error (default), or l1, the absolute error, so the loss is the "
             "MAE that is reported; applies to every target and to forces.")
    patience: int = setting(20, help="Early-stopping patience in epochs.",
                            click_type=click.IntRange(min=1))
    seed: int = setting(0, help="The one seed.")
    ensemble: int = setting(1, click_type=click.IntRange(min=1),
                            help="Committee size K: train K members (seeds SEED..SEED+K-1, same "
                                 "split) saved as one model whose predictions carry a spread "
                                 "(<column>_std) and an out-of-domain flag. 1: a single model.")
    committee_folds: bool = setting(
        False, help="With --ensemble K > 1: member 0 keeps the split, and each other member "
                    "validates on a share of the budget of its own (disjoint, as large as the "
                    "validation set) and trains on the rest, the validation set included, so "
                    "the committee learns from every label. Its validation figures are then "
                    "optimistic and its out-of-domain threshold is calibrated on spreads where "
                    "members trained on the molecule (members k >= 1 saw member 0's validation "
                    "set); the test set is untouched.")
    delta: str | None = setting(
        None, help="Delta learning on a cheap level: a level (gfn2-xtb, gfn1-xtb, mmff94, "
                   "hf/sto-3g; computed for every molecule and cached in OUT) or label "
                   "store(s), comma-separated, with every molecule's cheap energy. The model "
                   "learns target - s*E_cheap (forces too where both have them; s fitted on "
                   "the training labels) and its predictions compute the cheap level and add "
                   "it back.")
    delta_scale: float | None = None
    max_minutes: float | None = setting(None, help="Wall-clock cap on training.",
                                        click_type=click.FloatRange(min=0, min_open=True))
    ema_decay: float | None = setting(
        None, click_type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="Keep an exponential moving average of the weights (decay per optimizer step, "
             "e.g. 0.99): validation, early stopping and the saved model use the averaged "
             "weights. Default: off.")
    anneal: float = setting(
        0.0, click_type=click.FloatRange(0.0, 1.0),
        help="Cool the learning rate down along half a cosine, to lr/100, over the last "
             "fraction of the run's budget (epochs or max_minutes, whichever ends first); "
             "the run then uses its whole budget (no plateau halving, no early stopping) and "
             "keeps its best validation epoch. 0 (default): halve lr on plateaus, stop "
             "after patience epochs without progress.")
    refit_atomref: bool = setting(
        False, help="After training, add the per-element least-squares fit of what the model "
                    "leaves on its own training molecules to each extensive head's reference "
                    "values (every committee member; logged as refit.*). Measured on the QM9 "
                    "delta target (64 committees, test set): 0.02-0.05 kcal/mol lower at N = "
                    "100-300, no change at N >= 1000.")
    prior_alpha: float | None = None
    prior_alphas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1])
    dtype: str = "float32"
    threads: int | None = setting(None, help="torch threads.", click_type=click.IntRange(min=1))
    compile: bool = setting(False, help="torch.compile the model (forces in the same graph): "
                            "about 2x faster steps after 1-2 minutes of compiling on a CPU; "
                            "pays for runs longer than ~5 minutes. MOLPRE_COMPILE=1 also sets it.")
    accelerator: str = setting("auto", help="auto: a GPU when torch sees one, else CPU.",
                               click_type=click.Choice(["auto", "cpu", "gpu"], case_sensitive=False))
    devices: int = setting(1, help="Devices to train on (1; choose the GPU with CUDA_VISIBLE_DEVICES).",
                           click_type=click.IntRange(min=1))
    out: str = setting("finetune-out", flags=("-o", "--output"), required=True,
                       click_type=click.Path(),
                       help="OUTDIR: model/ (MLflow pyfunc), model.ckpt, metrics.json, parity.png.")
    run_name: str | None = setting(None, help="MLflow run name.")
    experiment: str = "molpre-finetune"
    register_name: str | None = setting(None, help="Also register the model in the MLflow "
                                                   "registry under NAME.")
    log_model: bool = True
    progress: bool | None = setting(None, help="Draw a progress bar (default: only when stderr "
                                              "is a terminal, so a redirected log stays clean).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", target_text(self.target))
        self.validate()

    @property
    def freeze_blocks(self) -> int | None:
        """K for ``freeze:K``, else None."""
        match = _FREEZE.match(self.mode)
        return int(match.group(1)) if match else None

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        if self.mode not in MODES and self.freeze_blocks is None:
            raise ConfigError(f"mode {self.mode!r}: use scratch, probe, freeze:K, full or prior")
        if self.mode != "scratch" and not self.encoder:
            raise ConfigError(f"mode {self.mode!r} needs an encoder checkpoint (--encoder)")
        if self.head == "pretrained" and (self.mode == "scratch" or not _is_energy(self.target)):
            raise ConfigError("head: pretrained needs a pretrained encoder (mode full, prior, "
                              "probe or freeze:K) and an energy target")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss {self.loss!r}: use {' or '.join(LOSSES)}")
        if (self.forces_weight or 0) < 0 or self.energy_weight < 0:
            raise ConfigError("loss weights must be >= 0")
        if self.forces_weight is not None and self.forces is None:
            object.__setattr__(self, "forces", self.forces_weight > 0)
        if self.forces and self.forces_weight == 0:
            raise ConfigError("forces: true needs forces_weight > 0 (or leave it unset)")
        if sum(x is not None for x in (self.test_ids, self.test_first)) > 1:
            raise ConfigError("give test_ids or test_first, not both")
        if self.split_file and any(x is not None for x in (self.test_ids, self.test_first,
                                                           self.budget)):
            raise ConfigError("split_file gives the whole split: drop test_ids, test_first "
                              "and budget")
        if self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if self.committee_folds and self.ensemble < 2:
            raise ConfigError("committee_folds needs a committee: ensemble >= 2")
        for name in ("epochs", "batch_size", "ensemble", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.lr <= 0:
            raise ConfigError("lr must be > 0")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in (0, 1), got {getattr(self, name)!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype {self.dtype!r}: use float32 or float64")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("max_minutes must be > 0")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay {self.ema_decay!r}: must be in (0, 1)")
        if not 0.0 <= float(self.anneal) <= 1.0:
            raise ConfigError(f"anneal {self.anneal!r}: must be in [0, 1]")
        if str(self.accelerator).lower() not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"accelerator {self.accelerator!r}: use auto, cpu or gpu")
        if self.devices != 1:
            raise ConfigError(f"devices {self.devices!r}: finetune trains on one device "
                              "(pick a GPU with CUDA_VISIBLE_DEVICES)")

    @property
    def force_weight(self) -> float:
        """The force-loss weight used when forces are fitted."""
        return DEFAULT_FORCES_WEIGHT if self.forces_weight is None else float(self.forces_weight)

    def resolved(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict of every field (absolute data path)."""
        out = asdict(self)
        if self.data:
            out["data"] = str(Path(self.data).expanduser().resolve())
        return out

    def replace(self, **changes: Any) -> FinetuneConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Build from a dict (e.g. a YAML pipeline): unknown keys and wrong types are errors."""
        return from_dict(cls, data)


#: FinetuneConfig fields that ``molpre finetune`` offers as options (help in the fields).
CLI_FIELDS = ("data", "target", "unit", "forces_key", "budget", "test_fraction", "test_ids", "test_first",
              "split_seed", "split_file", "val_fraction", "mode", "encoder", "head", "preset", "epochs", "batch_size",
              "lr", "loss", "forces", "forces_weight", "patience", "seed", "ensemble", "committee_folds", "delta",
              "max_minutes", "ema_decay", "anneal", "refit_atomref", "threads", "compile", "run_name", "register_name", "accelerator",
              "devices", "progress", "out")
