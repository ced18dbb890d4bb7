"""The pretraining config: defaults, YAML loading, dotted ``key=value`` overrides.

A config is a nested dict (the YAML file's shape); :data:`DEFAULTS` lists every key with
its default, so a user's file only states what differs. ``--set train.lr=3e-4`` style
overrides parse their value as YAML (numbers, booleans, null, lists).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "output": None,  # OUTDIR: last.ckpt, encoder.pt, shards/, run.json
    "resume": True,  # continue from OUTDIR/last.ckpt when present
    "corpus": {
        "path": None,  # molecule file; None = molpre.chem.default_corpus() (RDKit's NCI sample)
        "smiles_col": None,
        "max_molecules": 1000,
        "conformers": 4,
        "workers": 1,
        "shard_size": 1000,
        "shards": None,  # an existing shard directory (skips the build)
    },
    "model": {"preset": "small", "overrides": {}},
    # objectives by registered name (molpre.train.objectives): weight (0 = off) and options
    "objectives": {
        "mask": {"weight": 1.0, "fraction": 0.15, "coord_noise": 0.0},
        "contrast": {"weight": 1.0, "temperature": 0.1, "proj_dim": 64},
        "denoise": {"weight": 1.0, "sigma": 0.05},
    },
    "train": {
        "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "epochs": 1, "max_steps": -1,
        "max_time_s": None, "devices": 1, "accelerator": "auto", "strategy": "auto",
        "threads": None,  # torch threads per process (None: torch's default)
        "num_workers": 0, "shuffle_buffer": 256, "log_every_n_steps": 10, "grad_clip": 10.0,
        "checkpoint_every_n_steps": 200,  # OUTDIR/last.ckpt (atomic) every N steps
        "keep_checkpoints": 2,  # periodic OUTDIR/checkpoints/step=*.ckpt kept (0: last.ckpt only)
        "progress": True,
    },
    "monitor": {
        "every_n_steps": 50, "molecules": 128, "min_std": 0.05, "min_effective_rank": 1.5,
        "max_uniformity": -0.05, "stop_on_collapse": False,
    },
    "probe": {
        "data": None, "target": None, "every_n_steps": 100, "max_molecules": 500,
        "holdout": 0.2, "window": 8, "loss_drop": 0.05, "probe_gain": 0.01,
    },
    "tracking": {"experiment": "molpre-pretrain", "run_name": "pretrain"},
}


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (unknown top-level keys are an error)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value) if key != "overrides" else dict(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``a.b.c=value`` override in place; value parsed as YAML."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} is not key=value")
    path, text = assignment.split("=", 1)
    *parents, leaf = path.strip().split(".")
    node = config
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {assignment!r}: {name} is not a section")
    node[leaf] = yaml.safe_load(text)


def set_objectives(config: dict[str, Any], names: Iterable[str]) -> None:
    """Keep only ``names`` active (weight of the others set to 0; listed ones at least 1).

    A registered objective not yet in the config joins with its default options.
    """
    from molpre.train.objectives import REGISTRY, default_section

    wanted = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(wanted) - set(REGISTRY))
    if unknown or not wanted:
        raise ValueError(f"objectives must be among {sorted(REGISTRY)}, "
                         f"got {unknown or 'none'}")
    sections = config["objectives"]
    for name in wanted:
        sections.setdefault(name, default_section(name))
    for name, section in sections.items():
        if name not in wanted:
            section["weight"] = 0.0
        elif section.get("weight", 1.0) <= 0:
            section["weight"] = 1.0


def check_objectives(config: Mapping[str, Any]) -> None:
    """ValueError naming ``objectives.<name>[.<key>]`` for an unknown objective or option,
    a mistyped value, or no objective with a weight > 0."""
    from molpre.train.objectives import active

    sections = config.get("objectives")
    if not isinstance(sections, Mapping):
        raise ValueError("objectives: expected a mapping of objective name -> settings")
    for name, section in sections.items():
        if not isinstance(section, Mapping):
            raise ValueError(f"objectives.{name}: expected a mapping (weight and options)")
    if not active(sections):
        raise ValueError("objectives: no objective has a weight > 0")


def resolve(config: Mapping[str, Any] | str | Path | None = None,
            overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file or dict <- dotted overrides; validates top-level keys."""
    if isinstance(config, (str, Path)):
        config = yaml.safe_load(Path(config).read_text()) or {}
    user = dict(config or {})
    user.pop("pipeline", None)  # a pipelines/*.yaml may name itself
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    out = merge(DEFAULTS, user)
    for assignment in overrides:
        set_dotted(out, assignment)
    check_objectives(out)
    return out
