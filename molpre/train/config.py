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

from molpre.configs import reject_unknown_keys

MODES = ("scratch", "probe", "freeze:K", "full", "prior")
_FREEZE = re.compile(r"^freeze:(\d+)$")


class ConfigError(ValueError):
    """An invalid finetune configuration; the message names the field."""


@dataclass
class FinetuneConfig:
    """A finetune: data, split, model, mode and optimisation.

    data: label file (.db label store or extxyz). target: a registered target or data key
    of molpre.targets (``energy``, ``gap``, ``u0_atom``, ...), several comma-separated
    (``energy,gap``: one head each, trained jointly); unit: the stored unit of a single target
    (None: the registry's). forces: also fit forces (needs forces in the data), weighted by
    forces_weight (energy term weighted by energy_weight). Split: test_fraction of molecules,
    or test_ids (file of mol_ids), or test_first (first N of default_rng(split_seed)
    .permutation(n_rows), the shared QM9 protocol); budget labels for train + val, of which
    val_fraction of the molecules validate. mode: scratch | probe | freeze:K | full | prior
    (needs encoder, a checkpoint from ``molpre pretrain``, except scratch). prior_alpha: L2-SP
    strength; when None it is chosen on validation from prior_alphas. max_minutes: wall-clock
    cap on training (shared by the prior_alphas runs). patience: epochs without a better
    val MAE before stopping.
    """

    data: str = ""
    target: str = "energy"
    unit: str | None = None
    forces: bool = False
    energy_weight: float = 1.0
    forces_weight: float = 0.0
    test_fraction: float = 0.1
    test_ids: str | None = None
    test_first: int | None = None
    split_seed: int = 0
    budget: int | None = None
    val_fraction: float = 0.1
    mode: str = "scratch"
    encoder: str | None = None
    preset: str = "small"
    epochs: int = 100
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.0
    patience: int = 20
    seed: int = 0
    max_minutes: float | None = None
    prior_alpha: float | None = None
    prior_alphas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1])
    dtype: str = "float32"
    threads: int | None = None
    out: str = "finetune-out"
    run_name: str | None = None
    experiment: str = "molpre-finetune"
    register_name: str | None = None
    log_model: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
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
        if self.forces_weight < 0 or self.energy_weight < 0:
            raise ConfigError("loss weights must be >= 0")
        if self.forces_weight > 0 and not self.forces:
            self.forces = True
        if sum(x is not None for x in (self.test_ids, self.test_first)) > 1:
            raise ConfigError("give test_ids or test_first, not both")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.lr <= 0:
            raise ConfigError("lr must be > 0")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError("dtype must be float32 or float64")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("max_minutes must be > 0")

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
        """Build from a dict (e.g. a YAML pipeline), rejecting unknown keys."""
        reject_unknown_keys(cls, data, "finetune", ConfigError)
        return cls(**data)
