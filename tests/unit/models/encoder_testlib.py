"""Tiny encoder config and molecule batches shared by the model tests (imported by name)."""

from __future__ import annotations

import torch
from ase.build import molecule

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.encoder import EncoderConfig

TINY = EncoderConfig(channels=8, lmax=2, num_layers=2, cutoff=4.0, num_radial_basis=4,
                     radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3)
ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


def make_batch(names, dtype=torch.float32, cutoff=TINY.cutoff):
    """A batch of ASE's built-in molecules, positions in ``dtype``."""
    batch = collate([atoms_to_sample(molecule(n), cutoff) for n in names])
    batch["pos"] = batch["pos"].to(dtype)
    return batch


def force_loss_step(model, batch):
    """``(energies, forces, {name: weight gradient})`` of a force + energy loss on ``batch``."""
    model.zero_grad()
    out = model(batch, compute_forces=True)
    loss = out[keys.PREDICTED_FORCES].pow(2).sum() + out[keys.PREDICTED_ENERGY].sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out[keys.PREDICTED_ENERGY].detach(), out[keys.PREDICTED_FORCES].detach(), grads
