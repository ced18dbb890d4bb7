"""Fixed batches the pretraining watches look at: a monitor batch and the probe set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from molpre.data.datasets import read_frames
from molpre.data.graph import atoms_to_sample, collate
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import iter_shard


def monitor_batch(dataset: ShardDataset, molecules: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The first ``molecules`` molecules of the corpus, ``dataset.views`` conformers each,
    collated view-major (fixed for the whole run)."""
    rng = np.random.default_rng(seed)
    items = []
    for path in dataset.files:
        for mol in iter_shard(path):
            if len(items) >= molecules or mol.mol_index >= dataset.n_molecules:
                break
            items.append(dataset.samples(mol, rng))
        if len(items) >= molecules:
            break
    return collate_views(items)


def probe_target(atoms, key: str) -> float:
    """The probe label of one frame: ``atoms.info[key]``, or the calculator energy for "energy"."""
    if key in atoms.info:
        return float(atoms.info[key])
    if key == "energy" and atoms.calc is not None:
        return float(atoms.get_potential_energy())
    raise KeyError(f"probe target {key!r} not in frame (info keys: {sorted(atoms.info)})")


def probe_batches(path: str | Path, target: str, cutoff: float, limit: int = 500,
                  batch_size: int = 64) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """A labeled probe set as collated batches and its targets [n] (frames without the
    target are skipped)."""
    if not target:
        raise ValueError("probe data given without a probe target key")
    samples, y = [], []
    for atoms in read_frames(path, limit):
        try:
            value = probe_target(atoms, target)
        except KeyError:
            continue
        samples.append(atoms_to_sample(atoms, cutoff))
        y.append(value)
    if len(y) < 10:
        raise ValueError(f"probe set {path} has {len(y)} frames with {target!r}; need >= 10")
    batches = [collate(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)]
    return batches, np.asarray(y)
