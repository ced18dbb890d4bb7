"""Pretraining corpus on disk: conformers in streaming shards, plus a manifest.

Layout of a shard directory::

    manifest.json      counts, shard list, settings (written last: its presence = complete)
    molecules.csv      mol_index, mol_id, smiles, inchikey, scaffold (Murcko), n_conformers, shard
    failures.csv       row, mol_id, input, reason: every molecule that gave no conformer
    shard-00000.npz    up to ``shard_size`` molecules, every conformer of a molecule together

A shard holds flat numpy arrays (no pickle): ``numbers`` [sum n_atoms] uint8,
``n_atoms`` [M] int32, ``n_conf`` [M] int32, ``mol_index`` [M] int64 and ``positions``
[sum n_atoms*n_conf, 3] float32 in Angstrom (molecule by molecule, conformer by conformer).
A labeled corpus (``molpre.shards/2`` with ``labels`` in the manifest: the level's tag,
whether forces are stored, and the per-element least-squares fit of its energies over the
whole corpus, ``offsets`` {Z: eV}) adds ``energy`` [sum n_conf] float64 eV and, with forces,
``forces`` [sum n_atoms*n_conf, 3] float32 eV/Angstrom. Version 1 shards still read.
Writing streams molecule by molecule and reading loads one shard at a time, so memory stays
flat as the corpus grows. :class:`ShardDataset` lives in :mod:`molpre.data.shard_stream`.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
MOLECULES = "molecules.csv"
FAILURES = "failures.csv"
FORMAT = "molpre.shards/2"
#: Formats this module reads.
READABLE = ("molpre.shards/1", FORMAT)
#: Columns of molecules.csv and failures.csv.
MOLECULE_COLUMNS = ["mol_index", "mol_id", "smiles", "inchikey", "scaffold", "n_conformers", "shard"]
FAILURE_COLUMNS = ["row", "mol_id", "input", "reason"]


def murcko_scaffold(mol: Any) -> str:
    """Bemis-Murcko scaffold SMILES of an RDKit molecule ("" for acyclic or on failure)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol)
    except Exception:  # noqa: BLE001 - a scaffold is bookkeeping, never a reason to fail
        return ""


@dataclass
class Molecule:
    """One corpus molecule: elements [n], conformers [k, n, 3] Angstrom and, in a labeled
    corpus, their energies [k] eV and forces [k, n, 3] eV/Angstrom."""

    numbers: np.ndarray
    conformers: np.ndarray
    mol_index: int
    energies: np.ndarray | None = None
    forces: np.ndarray | None = None


class OffsetFit:
    """Per-element least squares of energies on element counts, accumulated as normal
    equations so a corpus of any size is fitted in one pass and constant memory."""

    def __init__(self) -> None:
        self.xtx = np.zeros((119, 119))
        self.xty = np.zeros(119)

    def add(self, numbers: np.ndarray, energies: np.ndarray) -> None:
        counts = np.bincount(numbers, minlength=119).astype(float)
        self.xtx += len(energies) * np.outer(counts, counts)
        self.xty += counts * float(np.sum(energies))

    def solve(self) -> dict[int, float]:
        """``{Z: eV}`` for every element seen."""
        seen = np.flatnonzero(np.diag(self.xtx) > 0)
        if not len(seen):
            return {}
        coef, *_ = np.linalg.lstsq(self.xtx[np.ix_(seen, seen)], self.xty[seen], rcond=None)
        return {int(z): float(c) for z, c in zip(seen, coef, strict=True)}


@dataclass
class ShardWriter:
    """Writes molecules into ``shard_size``-molecule shards as they arrive; ``settings``
    ``labels`` ({level, forces}) makes a labeled corpus."""

    outdir: Path
    shard_size: int = 1000
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels: dict | None = self.settings.get("labels")
        self.outdir = Path(self.outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        (self.outdir / MANIFEST).unlink(missing_ok=True)
        self._mol_file = open(self.outdir / MOLECULES, "w", newline="")
        self._fail_file = open(self.outdir / FAILURES, "w", newline="")
        self._mols = csv.writer(self._mol_file)
        self._fails = csv.writer(self._fail_file)
        self._mols.writerow(MOLECULE_COLUMNS)
        self._fails.writerow(FAILURE_COLUMNS)
        self._pending: list[Molecule] = []
        self._offsets = OffsetFit()
        self.shards: list[dict] = []
        self.n_molecules = self.n_conformers = self.n_failed = 0
        self.reasons: dict[str, int] = {}
        self._start = time.perf_counter()

    def add(self, record: Any, conformers: list, error: str | None = None, *,
            energies: np.ndarray | None = None, forces: np.ndarray | None = None) -> None:
        """Add one intake record with its ase.Atoms conformers (and, in a labeled corpus,
        their ``energies`` [k] eV and ``forces`` [k, n, 3] eV/Angstrom), or its failure."""
        if error or not conformers:
            reason = (error or "no conformers").split(":")[0][:80]
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            self.n_failed += 1
            self._fails.writerow([record.row, record.mol_id, record.input, error or "no conformers"])
            return
        numbers = np.asarray(conformers[0].numbers, dtype=np.uint8)
        coords = np.stack([np.asarray(a.positions, dtype=np.float32) for a in conformers])
        index = self.n_molecules
        if energies is not None:
            energies = np.asarray(energies, dtype=np.float64)
            self._offsets.add(numbers, energies)
        if forces is not None:
            forces = np.asarray(forces, dtype=np.float32).reshape(coords.shape)
        self._pending.append(Molecule(numbers, coords, index, energies, forces))
        self._mols.writerow([index, record.mol_id, record.smiles, record.inchikey,
                             murcko_scaffold(record.mol), len(conformers), len(self.shards)])
        self.n_molecules += 1
        self.n_conformers += len(conformers)
        if len(self._pending) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        name = f"shard-{len(self.shards):05d}.npz"
        mols, self._pending = self._pending, []
        arrays = dict(
            numbers=np.concatenate([m.numbers for m in mols]),
            n_atoms=np.array([len(m.numbers) for m in mols], dtype=np.int32),
            n_conf=np.array([len(m.conformers) for m in mols], dtype=np.int32),
            mol_index=np.array([m.mol_index for m in mols], dtype=np.int64),
            positions=np.concatenate([m.conformers.reshape(-1, 3) for m in mols]),
        )
        if self.labels and mols[0].energies is not None:
            arrays["energy"] = np.concatenate([m.energies for m in mols])
            if self.labels.get("forces"):
                arrays["forces"] = np.concatenate([m.forces.reshape(-1, 3) for m in mols])
        np.savez(self.outdir / name, **arrays)
        n_conf = sum(len(m.conformers) for m in mols)
        self.shards.append({"file": name, "molecules": len(mols), "conformers": n_conf})

    def close(self) -> dict:
        """Flush the last shard, write the manifest and return it."""
        self._flush()
        self._mol_file.close()
        self._fail_file.close()
        labels = dict(self.labels, offsets={str(z): v for z, v in self._offsets.solve().items()}
                      ) if self.labels else None
        manifest = {
            "format": FORMAT, "labels": labels,
            "molecules": self.n_molecules, "conformers": self.n_conformers,
            "failed": self.n_failed, "failure_reasons": self.reasons, "shards": self.shards,
            "settings": self.settings, "build_seconds": round(time.perf_counter() - self._start, 3),
        }
        (self.outdir / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return manifest


def build_shards(
    records: Iterable[Any], outdir: str | Path, *, conformers: int = 4, seed: int = 0,
    workers: int = 1, shard_size: int = 1000, progress: bool = True,
    conformer_config: Any = None,
) -> dict:
    """Embed conformers of intake ``records`` (molpre.chem) and write shards; return the manifest.

    Records that already failed intake, and molecules whose conformers failed, are counted in
    ``failures.csv`` with their reasons. Memory stays bounded: conformers stream from
    :func:`molpre.chem.conformer_stream` and are written shard by shard.
    ``conformer_config``: a :class:`molpre.chem.ConformerConfig` (None: intake defaults).
    """
    from tqdm import tqdm

    from molpre.chem import conformer_stream

    settings = {"conformers": conformers, "seed": seed, "shard_size": shard_size}
    writer = ShardWriter(Path(outdir), shard_size=shard_size, settings=settings)
    stream = conformer_stream(records, n=conformers, seed=seed, workers=workers,
                              config=conformer_config)
    bar = tqdm(stream, desc="conformers", unit="mol", disable=not progress)
    for outcome in bar:
        writer.add(outcome.record, outcome.conformers, outcome.error)
        bar.set_postfix(ok=writer.n_molecules, failed=writer.n_failed, refresh=False)
    return writer.close()


def read_manifest(shard_dir: str | Path) -> dict:
    """The manifest of a complete shard directory (FileNotFoundError if the build never ended)."""
    path = Path(shard_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {shard_dir}: not a complete shard directory")
    manifest = json.loads(path.read_text())
    if manifest.get("format") not in READABLE:
        raise ValueError(f"{path}: unknown shard format {manifest.get('format')!r}")
    return manifest


def iter_shard(path: str | Path) -> Iterator[Molecule]:
    """Molecules of one shard file, in stored order (loads only that shard)."""
    with np.load(path, allow_pickle=False) as data:
        numbers, n_atoms = data["numbers"], data["n_atoms"]
        n_conf, mol_index, positions = data["n_conf"], data["mol_index"], data["positions"]
        energy = data["energy"] if "energy" in data else None
        forces = data["forces"] if "forces" in data else None
    atom_start = np.concatenate([[0], np.cumsum(n_atoms)])
    pos_start = np.concatenate([[0], np.cumsum(n_atoms * n_conf)])
    conf_start = np.concatenate([[0], np.cumsum(n_conf)])
    for i in range(len(n_atoms)):
        n, k = int(n_atoms[i]), int(n_conf[i])
        coords = positions[pos_start[i]:pos_start[i + 1]].reshape(k, n, 3)
        mol = Molecule(numbers[atom_start[i]:atom_start[i + 1]].copy(), coords.copy(),
                       int(mol_index[i]))
        if energy is not None:
            mol.energies = energy[conf_start[i]:conf_start[i + 1]].copy()
        if forces is not None:
            mol.forces = forces[pos_start[i]:pos_start[i + 1]].reshape(k, n, 3).copy()
        yield mol
