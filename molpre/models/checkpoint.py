"""Finetuned-model checkpoints: weights plus everything needed to rebuild and describe them.

A checkpoint is ``torch.save`` of a plain dict (loadable with ``weights_only=True``)::

    {"format": "molpre.finetune/1", "model_config": EnergyModel.config, "state_dict": ...,
     "dtype": "float32", "config": resolved FinetuneConfig, "meta": {target, unit, metrics}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from molpre.models.energy import EnergyModel

FORMAT = "molpre.finetune/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or of an incompatible format version."""


def model_dtype(model: torch.nn.Module) -> str:
    """``"float32"`` or ``"float64"``: the dtype of the model's encoder weights."""
    dtype = next(model.encoder.parameters()).dtype
    return "float64" if dtype == torch.float64 else "float32"


def save_checkpoint(
    model: EnergyModel, path: str | Path, config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the model with its rebuild recipe, the finetune config and free-form meta."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model_config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dtype": model_dtype(model),
        "config": dict(config or {}),
        "meta": dict(meta or {}),
    }
    torch.save(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, after checking that it exists and has the expected format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a foreign or corrupt file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path} is not a readable molpre checkpoint ({first})") from err
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt != FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {fmt!r}; this molpre reads {FORMAT!r} "
            "(re-run `molpre finetune` to make a compatible model)"
        )
    return payload


def model_from_payload(payload: dict[str, Any]) -> EnergyModel:
    """Rebuild the EnergyModel of a checkpoint dict, weights loaded, in eval mode."""
    try:
        model = EnergyModel.from_config(payload["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint model config cannot be rebuilt: {err}") from err
    model.to(DTYPES[payload.get("dtype", "float32")])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_checkpoint(path: str | Path) -> tuple[EnergyModel, dict[str, Any]]:
    """``(model, payload)`` for a finetune checkpoint; CheckpointError with one clear reason."""
    payload = read_checkpoint(path)
    return model_from_payload(payload), payload
