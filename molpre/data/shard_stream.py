"""Streaming pretraining data from shards (see :mod:`molpre.data.shards`).

:class:`ShardDataset` is an IterableDataset: each (DDP rank, DataLoader worker) pair reads
its own shards (or, when shards are fewer than readers, its own stride of molecules), one
shard in memory at a time, through a seeded shuffle buffer. Every reader yields the same
number of molecules per epoch (cycling its share), so DDP ranks see equal batch counts.
An item is one molecule as ``views`` conformer samples (two distinct conformers when it has
them: a contrastive positive pair); :func:`collate_views` batches them view-major. In a
labeled corpus each sample also carries its cheap level: keys.CHEAP_ENERGY ``[1]`` eV minus
the corpus's per-element fit (the manifest's ``labels.offsets``) and keys.CHEAP_FORCES
``[n, 3]`` eV/Angstrom when the corpus has forces.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from molpre.data import keys
from molpre.data.shards import Molecule, iter_shard, read_manifest


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(IterableDataset):
    """Molecules from a shard directory as lists of ``views`` graph samples.

    ``cutoff``: neighbour radius (Angstrom) for :func:`molpre.data.graph.atoms_to_sample`.
    ``max_molecules``: use only molecules with mol_index below it (None: all); ``files``:
    only these shard files (names as in the manifest; None: all), e.g. to hold some out.
    Call :meth:`set_epoch` each epoch to reshuffle (seed + epoch drive the order).
    """

    def __init__(self, shard_dir: str | Path, cutoff: float, *, views: int = 1,
                 shuffle_buffer: int = 256, seed: int = 0, max_molecules: int | None = None,
                 files: list[str] | None = None):
        super().__init__()
        self.shard_dir = Path(shard_dir)
        self.manifest = read_manifest(shard_dir)
        self.cutoff, self.views, self.seed = cutoff, views, seed
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.labels = self.manifest.get("labels") or None
        self.offsets = ({int(z): float(v) for z, v in self.labels["offsets"].items()}
                        if self.labels else {})
        limit = max_molecules or self.manifest["molecules"]
        self._index_limit = limit
        self._shards, self.n_molecules, start = [], 0, 0
        for shard in self.manifest["shards"]:  # shards hold consecutive mol_index ranges
            used = max(0, min(start + shard["molecules"], limit) - start)
            if used and (files is None or shard["file"] in files):
                self._shards.append(shard)
                self.n_molecules += used
            start += shard["molecules"]
        self.files = [self.shard_dir / shard["file"] for shard in self._shards]
        self.epoch = 0
        self.rank, self.world = _rank_world()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def reader_quota(self, readers: int) -> int:
        """Molecules each of ``readers`` yields per epoch (at least one)."""
        return max(1, self.n_molecules // readers)

    def _reader(self) -> tuple[int, int]:
        info = get_worker_info()
        rank, world = _rank_world()
        if world == 1:  # not (yet) distributed here: keep what was seen at construction
            rank, world = self.rank, self.world
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return rank * workers + worker, world * workers

    def _my_molecules(self, cycle: int, gid: int, readers: int) -> Iterator[Molecule]:
        # the shard order is shared by all readers (seed, epoch, cycle): shares stay disjoint
        order = np.random.default_rng([self.seed, self.epoch, cycle]).permutation(len(self.files))
        by_shard = len(self.files) >= readers
        for position in order if not by_shard else order[gid::readers]:
            for mol in iter_shard(self.files[position]):
                if mol.mol_index >= self._index_limit:
                    continue
                if by_shard or mol.mol_index % readers == gid:
                    yield mol

    def _shuffled(self, rng: np.random.Generator, gid: int, readers: int) -> Iterator[Molecule]:
        buffer: list[Molecule] = []
        for cycle in itertools.count():  # cycle this reader's share; the caller stops at quota
            empty = True
            for mol in self._my_molecules(cycle, gid, readers):
                empty = False
                buffer.append(mol)
                if len(buffer) >= self.shuffle_buffer:
                    j = int(rng.integers(len(buffer)))
                    buffer[j], buffer[-1] = buffer[-1], buffer[j]
                    yield buffer.pop()
            if empty and not buffer:
                return
            rng.shuffle(buffer)
            yield from buffer
            buffer = []

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        gid, readers = self._reader()
        rng = np.random.default_rng([self.seed, self.epoch, gid])
        for count, mol in enumerate(self._shuffled(rng, gid, readers)):
            if count >= self.reader_quota(readers):
                return
            yield self.samples(mol, rng)

    def samples(self, mol: Molecule, rng: np.random.Generator) -> list[dict[str, torch.Tensor]]:
        """``views`` graph samples of distinct conformers of ``mol`` (repeats if it has one)."""
        from ase import Atoms

        from molpre.data.graph import atoms_to_sample

        k = len(mol.conformers)
        picks = rng.choice(k, size=self.views, replace=k < self.views)
        out = []
        reference = sum(self.offsets.get(int(z), 0.0) for z in mol.numbers)
        for c in picks:
            sample = atoms_to_sample(Atoms(numbers=mol.numbers, positions=mol.conformers[c]),
                                     self.cutoff)
            sample[keys.MOL_INDEX] = torch.tensor([mol.mol_index], dtype=torch.long)
            if mol.energies is not None:
                sample[keys.CHEAP_ENERGY] = torch.tensor([mol.energies[c] - reference],
                                                         dtype=torch.float64)
            if mol.forces is not None:
                sample[keys.CHEAP_FORCES] = torch.as_tensor(mol.forces[c])
            out.append(sample)
        return out


def collate_views(items: list[list[dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """Batch B molecules x V views as V*B graphs, view-major: graph v*B + b is view v of b.

    MOL_INDEX [V*B] says which molecule each graph is (the contrastive positives share it).
    """
    from molpre.data.graph import collate

    if not items:
        raise ValueError("collate_views got no molecule: the corpus has none to batch")
    views = len(items[0])
    flat = [item[v] for v in range(views) for item in items]
    mol_index = torch.cat([s[keys.MOL_INDEX] for s in flat])
    batch = collate([{k: v for k, v in s.items() if k != keys.MOL_INDEX} for s in flat])
    batch[keys.MOL_INDEX] = mol_index
    return batch
