"""Neighbour graphs and batches as plain dicts of tensors (key names in molpre.data.keys).

Graphs are built per molecule with a dense distance matrix (molecules are small), so no
torch_cluster is needed. Edges are directed, both directions present, no self loops:
``EDGE_INDEX[:, e] = (sender j, receiver i)`` with ``|pos_j - pos_i| <= cutoff``. The two
directions of a pair are neighbours (edges ``2k`` and ``2k + 1`` are ``(i, j)`` and ``(j, i)``),
which :func:`edges_paired` recognises: the encoder then evaluates what depends on the distance
alone (the radial MLP of every block) once a pair, not once an edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from molpre.data import keys

#: Keys holding one row per atom / per molecule; concatenated by collate.
NODE_KEYS = (
    keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.FORCES, keys.MASK, keys.MASKED_TARGET, keys.NOISE,
)
GRAPH_KEYS = (keys.ENERGY, keys.NUM_ATOMS, keys.CHARGE, keys.MOL_INDEX)


def radius_graph(
    pos: torch.Tensor, cutoff: float, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """All ordered pairs (j, i), j != i, within ``cutoff`` Angstrom (and the same molecule).

    Args:
        pos: ``[N, 3]`` Angstrom.
        cutoff: radius, Angstrom (pairs at exactly ``cutoff`` are included).
        batch: optional ``[N]`` molecule index; pairs across molecules are never edges.
    Returns:
        ``[2, E]`` long: pairs ``i < j`` sorted by ``i`` then ``j``, each as the two edges
        ``(i, j), (j, i)`` next to each other (see :func:`edges_paired`).
    """
    pos = torch.as_tensor(pos)
    n = pos.shape[0]
    if n == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device)
    with torch.no_grad():
        dist = torch.cdist(pos.double(), pos.double())
        adj = dist <= float(cutoff)
        adj.fill_diagonal_(False)
        if batch is not None:
            adj &= batch.unsqueeze(0) == batch.unsqueeze(1)
        first, second = torch.triu(adj, diagonal=1).nonzero(as_tuple=True)
    sender = torch.stack([first, second], dim=1).reshape(-1)
    receiver = torch.stack([second, first], dim=1).reshape(-1)
    return torch.stack([sender, receiver]).long()


def edges_paired(edge_index: torch.Tensor) -> bool:
    """Whether edges ``2k`` and ``2k + 1`` of ``edge_index [2, E]`` are the two directions of
    one pair, for every ``k`` (as :func:`radius_graph` and :func:`collate` leave them).

    A graph made elsewhere (any order) gives False, and the encoder then evaluates every edge.
    O(E), no copy of the index.
    """
    if edge_index.shape[1] % 2:
        return False
    forward, backward = edge_index[:, 0::2], edge_index[:, 1::2]
    return bool(torch.equal(forward[0], backward[1]) and torch.equal(forward[1], backward[0]))


def atoms_to_sample(
    atoms, cutoff: float, energy: float | None = None, forces: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """One conformer (an ``ase.Atoms``) as a sample dict.

    Keys: POSITIONS [n, 3] float32 Angstrom, ATOMIC_NUMBERS [n] long, EDGE_INDEX [2, E] long,
    NUM_ATOMS [1], CHARGE [1] (from ``atoms.info["charge"]``, 0 if absent), and when given
    ENERGY [1] float64 eV and FORCES [n, 3] float32 eV/Angstrom.
    """
    pos = torch.as_tensor(np.asarray(atoms.get_positions()), dtype=torch.float32)
    sample = {
        keys.POSITIONS: pos,
        keys.ATOMIC_NUMBERS: torch.as_tensor(np.asarray(atoms.get_atomic_numbers()), dtype=torch.long),
        keys.EDGE_INDEX: radius_graph(torch.as_tensor(atoms.get_positions()), cutoff),
        keys.NUM_ATOMS: torch.tensor([len(atoms)], dtype=torch.long),
        keys.CHARGE: torch.tensor([int(atoms.info.get("charge", 0))], dtype=torch.long),
    }
    if energy is not None:
        sample[keys.ENERGY] = torch.tensor([float(energy)], dtype=torch.float64)
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float32)
        if forces.shape != (len(atoms), 3):
            raise ValueError(f"forces must have shape ({len(atoms)}, 3), got {forces.shape}")
        sample[keys.FORCES] = torch.as_tensor(forces)
    return sample


def _as_graph_row(value: torch.Tensor) -> torch.Tensor:
    return value.reshape(1) if value.dim() == 0 else value


def collate(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate samples into one batch.

    Node keys and graph keys are concatenated, EDGE_INDEX is offset by the atoms before each
    sample, BATCH [N] (molecule index of each atom) and NUM_GRAPHS (python int) are added.
    Other tensor keys are stacked when 0-d and concatenated along dim 0 otherwise.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    counts = [int(s[keys.ATOMIC_NUMBERS].shape[0]) for s in samples]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    out: dict[str, torch.Tensor] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key == keys.EDGE_INDEX:
            out[key] = torch.cat([v + off for v, off in zip(values, offsets, strict=True)], dim=1)
        elif key in GRAPH_KEYS:
            out[key] = torch.cat([_as_graph_row(v) for v in values])
        elif key in NODE_KEYS or values[0].dim() > 0:
            out[key] = torch.cat(values)
        else:
            out[key] = torch.stack(values)
    out[keys.BATCH] = torch.repeat_interleave(
        torch.arange(len(samples)), torch.tensor(counts, dtype=torch.long)
    )
    if keys.NUM_ATOMS not in out:
        out[keys.NUM_ATOMS] = torch.tensor(counts, dtype=torch.long)
    out[keys.NUM_GRAPHS] = len(samples)
    return out
