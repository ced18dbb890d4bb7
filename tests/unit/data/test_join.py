"""Joining shard folders: order, renumbering, rows, offsets, refusals, and the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ase import Atoms
from click.testing import CliRunner
from rdkit import Chem

from molpre.chem import records_from_smiles
from molpre.cli import main
from molpre.data.join import JoinError, join_order, join_shards
from molpre.data.shard_stream import ShardDataset
from molpre.data.shards import OffsetFit, ShardWriter, iter_shard, read_manifest

#: eV per element, the energies' linear part (H, C, N, O).
TRUE_OFFSETS = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


def _corpus(path, smiles, *, level="gfn2-xtb", shard_size=2, seed=0, labeled=True):
    """A shard folder of ``smiles`` (two random conformers each; energies linear in the
    element counts plus noise, random forces), written by the corpus writer itself."""
    rng = np.random.default_rng(seed)
    settings = {"conformers": 2, "seed": seed, "shard_size": shard_size}
    if labeled:
        settings["labels"] = {"level": level, "forces": True}
    writer = ShardWriter(path, shard_size=shard_size, settings=settings)
    for record in records_from_smiles([(f"{path.name}-{k}", s) for k, s in enumerate(smiles)]):
        if not record.ok:
            writer.add(record, [], record.error)
            continue
        numbers = [a.GetAtomicNum() for a in Chem.AddHs(record.mol).GetAtoms()]
        confs = [Atoms(numbers=numbers, positions=rng.normal(size=(len(numbers), 3)))
                 for _ in range(2)]
        energies = sum(TRUE_OFFSETS[z] for z in numbers) + rng.normal(0, 0.05, 2)
        forces = rng.normal(size=(2, len(numbers), 3)) if labeled else None
        writer.add(record, confs, energies=energies if labeled else None, forces=forces)
    writer.close()
    return path


@pytest.fixture
def corpora(tmp_path):
    a = _corpus(tmp_path / "frag", ["CCO", "CCN", "not-a-smiles", "CCCO", "NCCO", "CC(=O)O"])
    b = _corpus(tmp_path / "mine", ["OCCO", "CNC", "COC(C)=O"], seed=1)
    return a, b


def _molecules(folder):
    manifest = read_manifest(folder)
    return [m for s in manifest["shards"] for m in iter_shard(folder / s["file"])]


def _rows(folder):
    with open(folder / "molecules.csv") as handle:
        return list(csv.DictReader(handle))


def test_joined_order_renumbering_and_rows(corpora, tmp_path):
    a, b = corpora
    out = tmp_path / "joined"
    manifest = join_shards([a, b], out)
    assert join_order([read_manifest(a), read_manifest(b)]) == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)]
    assert [s["molecules"] for s in manifest["shards"]] == [2, 2, 2, 1, 1]
    assert [s["file"] for s in manifest["shards"]] == [f"shard-{k:05d}.npz" for k in range(5)]
    assert manifest["molecules"] == 8 and manifest["failed"] == 1
    joined, first, second = _molecules(out), _molecules(a), _molecules(b)
    assert [m.mol_index for m in joined] == list(range(8))
    for got, want in zip(joined, first[:4] + second + first[4:], strict=True):
        assert np.array_equal(got.numbers, want.numbers)
        assert np.array_equal(got.conformers, want.conformers)
        assert np.array_equal(got.energies, want.energies)
        assert np.array_equal(got.forces, want.forces)
    rows = _rows(out)
    assert [r["mol_id"] for r in rows] == \
        ["frag-0", "frag-1", "frag-3", "frag-4", "mine-0", "mine-1", "mine-2", "frag-5"]
    assert [int(r["mol_index"]) for r in rows] == list(range(8))
    assert [int(r["shard"]) for r in rows] == [0, 0, 1, 1, 2, 2, 3, 4]
    with open(out / "failures.csv") as handle:
        assert [r["input"] for r in csv.DictReader(handle)] == ["not-a-smiles"]
    assert manifest["conformers"] == 16
    assert [s["molecules"] for s in manifest["sources"]] == [5, 3]


def test_offsets_are_refitted_over_every_energy_or_kept(corpora, tmp_path):
    a, b = corpora
    refit = join_shards([a, b], tmp_path / "refit")["labels"]["offsets"]
    fit = OffsetFit()
    for mol in _molecules(a) + _molecules(b):
        fit.add(mol.numbers, mol.energies)
    assert refit == {str(z): v for z, v in fit.solve().items()}
    for z, value in TRUE_OFFSETS.items():
        assert refit[str(z)] == pytest.approx(value, abs=0.2)
    assert refit != read_manifest(a)["labels"]["offsets"]
    kept = join_shards([a, b], tmp_path / "kept", keep_offsets=True)
    assert kept["labels"]["offsets"] == read_manifest(a)["labels"]["offsets"]
    assert kept["offsets_from"] == str(a.resolve())


def test_joined_folder_streams_like_a_built_one(corpora, tmp_path):
    a, b = corpora
    out = tmp_path / "joined"
    join_shards([a, b], out)
    assert ShardDataset(out, cutoff=4.0, max_molecules=3).n_molecules == 3
    held = read_manifest(out)["shards"][-1]["file"]
    only_held = ShardDataset(out, cutoff=4.0, files=[held])
    assert only_held.n_molecules == 1
    last_of_first = _molecules(a)[-1]
    assert np.array_equal(next(iter_shard(out / held)).conformers, last_of_first.conformers)


def test_unlabeled_folders_join(tmp_path):
    a = _corpus(tmp_path / "a", ["CCO", "CCN", "CCC"], labeled=False)
    b = _corpus(tmp_path / "b", ["CO"], labeled=False)
    manifest = join_shards([a, b], tmp_path / "out")
    assert manifest["labels"] is None and "offsets_from" not in manifest
    assert manifest["molecules"] == 4


def test_refusals_name_the_folder_and_leave_inputs_alone(corpora, tmp_path):
    a, b = corpora
    before = {p: p.read_bytes() for folder in (a, b) for p in folder.iterdir()}
    other = _corpus(tmp_path / "mmff", ["CCO"], level="mmff94")
    with pytest.raises(JoinError, match="mmff.*labeled .*mmff94"):
        join_shards([a, other], tmp_path / "x1")
    unlabeled = _corpus(tmp_path / "bare", ["CCO"], labeled=False)
    with pytest.raises(JoinError, match="not at all"):
        join_shards([a, unlabeled], tmp_path / "x2")
    with pytest.raises(JoinError, match="at least two"):
        join_shards([a], tmp_path / "x3")
    with pytest.raises(JoinError, match="twice"):
        join_shards([a, a], tmp_path / "x4")
    (tmp_path / "half").mkdir()
    with pytest.raises(JoinError, match="manifest"):
        join_shards([a, tmp_path / "half"], tmp_path / "x5")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(JoinError, match="not an empty folder"):
        join_shards([a, b], busy)
    assert (busy / "keep.txt").read_text() == "mine"
    assert {p: p.read_bytes() for folder in (a, b) for p in folder.iterdir()} == before


def test_molecules_csv_that_disagrees_with_the_shards_is_refused(corpora, tmp_path):
    a, b = corpora
    path = b / "molecules.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")  # drop a row
    with pytest.raises(JoinError, match="molecules.csv"):
        join_shards([a, b], tmp_path / "out")


def test_cli_joins_and_reports(corpora, tmp_path):
    a, b = corpora
    out = tmp_path / "joined"
    result = CliRunner().invoke(main, ["join-shards", str(a), str(b), "-o", str(out),
                                       "--keep-offsets"])
    assert result.exit_code == 0, result.output
    assert "8 molecules, 16 geometries, 5 shards, labeled gfn2-xtb" in result.output
    assert json.loads((out / "manifest.json").read_text())["molecules"] == 8
    again = CliRunner().invoke(main, ["join-shards", str(a), str(b), "-o", str(out)])
    assert again.exit_code != 0 and "not an empty folder" in again.output
