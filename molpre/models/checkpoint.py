"""Model checkpoints (finetuned models and pretrained encoders): weights plus everything needed
to rebuild and describe them, written atomically and read with ``weights_only=True``.

A finetune checkpoint is ``torch.save`` of a plain dict::

    {"format": "molpre.finetune/1", "model_config": EnergyModel.config, "state_dict": ...,
     "dtype": "float32", "config": resolved FinetuneConfig, "meta": {target, unit, metrics}}

An encoder checkpoint (``molpre pretrain``'s ``encoder.pt``) is
``{"format": "molpre.encoder/1", "config", "state_dict", "meta"}``. A committee
(``molpre finetune --ensemble K``, molpre.models.committee) is one checkpoint holding K
state dicts::

    {"format": "molpre.committee/1", "members": [{"model_config", "state_dict"}, ...],
     "dtype", "config", "meta": {..., "committee": K, "domain": Domain.to_dict()}}

read and rebuilt by the same functions (:func:`read_checkpoint`, :func:`model_from_payload`).
Every write goes to a
temporary file beside the target and is renamed over it (:func:`atomic_torch_save`), so a
crash never leaves a truncated checkpoint in place of a good one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from molpre.errors import first_line
from molpre.models.energy import EnergyModel

FORMAT = "molpre.finetune/1"
COMMITTEE_FORMAT = "molpre.committee/1"
#: Model checkpoint formats this molpre reads.
MODEL_FORMATS = (FORMAT, COMMITTEE_FORMAT)
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
    """Write the model (or a Committee: one state dict per member) with its rebuild recipe,
    the finetune config and free-form meta."""
    from molpre.models.committee import Committee

    payload: dict[str, Any] = {"dtype": model_dtype(model), "config": dict(config or {}),
                               "meta": dict(meta or {})}
    if isinstance(model, Committee):
        payload["format"] = COMMITTEE_FORMAT
        payload["members"] = [_weights(member) for member in model.members]
        payload["meta"].setdefault("committee", model.size)
    else:
        payload.update(format=FORMAT, **_weights(model))
    return atomic_torch_save(payload, path)


def _weights(model: torch.nn.Module) -> dict[str, Any]:
    """``{"model_config", "state_dict"}`` of one PropertyModel (tensors detached, on CPU)."""
    return {"model_config": model.config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def atomic_torch_save(payload: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(payload, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, after checking that it exists and has the expected format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a foreign or corrupt file
        raise CheckpointError(f"{path} is not a readable molpre checkpoint ({first_line(err, 200)})") from err
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt not in MODEL_FORMATS:
        raise CheckpointError(
            f"{path} has checkpoint format {fmt!r}; this molpre reads {' or '.join(MODEL_FORMATS)} "
            "(re-run `molpre finetune` to make a compatible model)"
        )
    return payload


def model_from_payload(payload: dict[str, Any]) -> EnergyModel:
    """Rebuild the model of a checkpoint dict (a PropertyModel, or a Committee for
    ``molpre.committee/1``), weights loaded, in eval mode."""
    dtype = DTYPES[payload.get("dtype", "float32")]
    if payload.get("format") == COMMITTEE_FORMAT:
        from molpre.models.committee import Committee

        members = payload.get("members")
        if not isinstance(members, list) or len(members) < 2:
            raise CheckpointError("committee checkpoint needs a list of at least 2 members")
        try:
            return Committee([_member(m, dtype) for m in members]).eval()
        except ValueError as err:
            raise CheckpointError(f"committee cannot be rebuilt: {err}") from err
    return _member(payload, dtype)


def _member(payload: dict[str, Any], dtype: torch.dtype) -> EnergyModel:
    """One PropertyModel from ``{"model_config", "state_dict"}``, in ``dtype``, eval mode."""
    try:
        model = EnergyModel.from_config(payload["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint model config cannot be rebuilt: {err}") from err
    model.to(dtype)
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_checkpoint(path: str | Path) -> tuple[EnergyModel, dict[str, Any]]:
    """``(model, payload)`` for a finetune checkpoint; CheckpointError with one clear reason."""
    payload = read_checkpoint(path)
    return model_from_payload(payload), payload


def save_encoder(encoder: torch.nn.Module, path: str | Path, meta: dict[str, Any] | None = None,
                 heads: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write an Encoder as ``{"format", "config", "state_dict", "meta", "heads"}``
    (atomically). ``heads``: state dicts of pretraining heads a finetune may start from
    (``{"energy": ...}``: a cheap level's energy head; its scale and level in ``meta``)."""
    from molpre.models.encoder import FORMAT as ENCODER_FORMAT

    payload = {
        "format": ENCODER_FORMAT,
        "config": encoder.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "meta": dict(meta or {}),
        "heads": {name: {k: v.detach().cpu() for k, v in state.items()}
                  for name, state in (heads or {}).items()},
    }
    return atomic_torch_save(payload, path)


def load_encoder(path: str | Path) -> torch.nn.Module:
    """Rebuild an Encoder saved by :func:`save_encoder`; ValueError names a wrong/old format."""
    from molpre.models.encoder import FORMAT as ENCODER_FORMAT
    from molpre.models.encoder import Encoder, EncoderConfig

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a foreign, corrupt or truncated file: torch raises many types
        raise CheckpointError(f"{path} is not a readable molpre encoder checkpoint "
                              f"({first_line(err, 200)}); give a `molpre pretrain` encoder.pt "
                              "or OUTDIR") from err
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt != ENCODER_FORMAT:
        raise ValueError(f"{path} is not a molpre encoder checkpoint (format {fmt!r}, "
                         f"expected {ENCODER_FORMAT!r})")
    encoder = Encoder(EncoderConfig.from_dict(payload["config"]))
    state = payload["state_dict"]
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    encoder.to(dtype)
    encoder.load_state_dict(state)
    encoder.checkpoint_meta = payload.get("meta", {})
    encoder.checkpoint_heads = payload.get("heads", {})
    return encoder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
