"""Shards: corpus -> conformers -> on-disk shards + manifest, and the streaming dataset."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from molpre.chem import records_from_smiles
from molpre.data import keys
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import build_shards, iter_shard, read_manifest

SMILES = ["CCCCO", "c1ccccc1O", "CCOCC", "not-a-smiles", "NCCCN", "OCC(O)CO", "CCCC(=O)O",
          "C1CCNCC1", "CCNCC", "CC(C)CO"]


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    build_shards(records_from_smiles(SMILES), out, conformers=3, seed=1, shard_size=4,
                 progress=False)
    return out


def test_manifest_counts_failures_and_keys(shard_dir):
    manifest = read_manifest(shard_dir)
    assert manifest["molecules"] == 9 and manifest["failed"] == 1
    assert sum(s["molecules"] for s in manifest["shards"]) == 9
    assert [s["molecules"] for s in manifest["shards"]] == [4, 4, 1]
    assert manifest["conformers"] == sum(s["conformers"] for s in manifest["shards"])
    with open(shard_dir / "failures.csv") as handle:
        failures = list(csv.DictReader(handle))
    assert len(failures) == 1 and failures[0]["input"] == "not-a-smiles"
    assert "SMILES" in failures[0]["reason"]
    with open(shard_dir / "molecules.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and all(len(r["inchikey"]) == 27 for r in rows)
    assert rows[1]["scaffold"] == "c1ccccc1" and rows[0]["scaffold"] == ""


def test_shards_keep_conformers_of_a_molecule_together(shard_dir):
    mols = [m for path in sorted(shard_dir.glob("shard-*.npz")) for m in iter_shard(path)]
    assert [m.mol_index for m in mols] == list(range(9))
    butanol = mols[0]
    assert butanol.numbers.tolist().count(6) == 4 and butanol.conformers.shape[1:] == (15, 3)
    assert butanol.conformers.shape[0] >= 2  # flexible: several distinct conformers
    assert not np.allclose(butanol.conformers[0], butanol.conformers[1])


def test_incomplete_directory_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        read_manifest(tmp_path)


def test_readers_split_the_corpus_and_shuffle_by_seed(shard_dir):
    seen = []
    for rank in range(2):
        ds = ShardDataset(shard_dir, 4.5, views=2, shuffle_buffer=3, seed=1)
        ds.rank, ds.world = rank, 2  # what DDP rank `rank` of 2 sees
        seen.append([item[0][keys.MOL_INDEX].item() for item in ds])
    assert len(seen[0]) == len(seen[1]) == 4  # equal quotas keep DDP ranks in step
    assert not set(seen[0]) & set(seen[1])
    ds = ShardDataset(shard_dir, 4.5, seed=1, shuffle_buffer=3)
    first = [i[0][keys.MOL_INDEX].item() for i in ds]
    again = [i[0][keys.MOL_INDEX].item() for i in ds]
    ds.set_epoch(1)
    other = [i[0][keys.MOL_INDEX].item() for i in ds]
    assert first == again and sorted(first) == list(range(9)) and other != first


def test_views_are_two_conformers_of_one_molecule(shard_dir):
    ds = ShardDataset(shard_dir, 4.5, views=2, shuffle_buffer=1, max_molecules=4)
    items = list(ds)
    assert len(items) == 4
    batch = collate_views(items)
    assert batch[keys.NUM_GRAPHS] == 8
    assert torch.equal(batch[keys.MOL_INDEX][:4], batch[keys.MOL_INDEX][4:])
    first = next(i for i in items if i[0][keys.MOL_INDEX].item() == 0)
    assert not torch.allclose(first[0][keys.POSITIONS], first[1][keys.POSITIONS])


def test_dataloader_workers_each_take_a_share(shard_dir):
    ds = ShardDataset(shard_dir, 4.5, views=1, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_views,
                                         num_workers=2)
    ids = torch.cat([b[keys.MOL_INDEX] for b in loader]).tolist()
    assert len(ids) == 2 * ds.reader_quota(2) == 8
    assert set(ids) <= set(range(9))
