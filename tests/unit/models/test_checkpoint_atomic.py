"""Checkpoints (finetuned models and encoders) are written atomically: a crash mid-write leaves
the previous good file in place and no temporary file behind."""

import pytest
import torch

from molpre.models import checkpoint
from molpre.models.checkpoint import load_checkpoint, load_encoder, save_checkpoint, save_encoder
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder


def _crash_mid_write(payload, handle):
    handle.write(b"half a checkpoint")
    raise OSError("disk full")


@pytest.mark.parametrize("kind", ["finetune", "encoder"])
def test_a_crash_mid_write_keeps_the_old_checkpoint(kind, tmp_path, monkeypatch):
    torch.manual_seed(0)
    encoder = build_encoder("small")
    model = EnergyModel(encoder, {1: -13.6, 8: -2041.0})
    path = tmp_path / "model.ckpt"
    save = (lambda: save_checkpoint(model, path)) if kind == "finetune" else (
        lambda: save_encoder(encoder, path, meta={"step": 1}))
    load = (lambda: load_checkpoint(path)[0].encoder) if kind == "finetune" else (
        lambda: load_encoder(path))
    save()
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint.torch, "save", _crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]
    monkeypatch.undo()
    reloaded = load()
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], value)
