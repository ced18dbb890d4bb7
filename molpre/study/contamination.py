"""Contamination audit: does the pretraining corpus (or the probe set) contain test molecules?

Overlap is counted three ways, from strict to loose: the full InChIKey (the same molecule,
same stereo and protonation), the InChIKey connectivity block (its first 14 characters: the
same skeleton, any stereo) and the Bemis-Murcko scaffold (the same ring system; acyclic
molecules have the empty scaffold and never count as overlapping by scaffold).

A corpus is a shard directory (``molecules.csv``, written by ``molpre pretrain``) or any
molecule file ``molpre.chem.read_molecules`` reads (SMILES, CSV, SDF, XYZ). Evaluation data
is a label file (extxyz / ASE .db) whose frames carry ``smiles`` or ``inchikey`` in their
info, else their bonds are perceived from the geometry.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LEVELS = ("inchikey", "block", "scaffold")


class ContaminationError(ValueError):
    """A leak the study must not run with (e.g. a probe set drawn from the test split)."""


@dataclass(frozen=True)
class MoleculeKeys:
    """The three audit keys of one molecule ("" where unknown)."""

    mol_id: str
    inchikey: str
    scaffold: str
    smiles: str = ""

    @property
    def block(self) -> str:
        return self.inchikey[:14]

    def key(self, level: str) -> str:
        return self.block if level == "block" else getattr(self, level)


def keys_from_record(record) -> MoleculeKeys:
    """Keys of a molpre.chem MoleculeRecord (its standardized molecule)."""
    from molpre.data.shards import murcko_scaffold

    if not record.ok:
        return MoleculeKeys(record.mol_id, "", "", "")
    return MoleculeKeys(record.mol_id, record.inchikey, murcko_scaffold(record.mol), record.smiles)


def keys_from_atoms(atoms, row: int = 0) -> MoleculeKeys:
    """Keys of one labeled frame: from its ``smiles`` (or ``inchikey``) info, else its geometry."""
    from molpre.chem.molecules import record_from_mol, record_from_smiles
    from molpre.chem.xyz import mol_from_atoms

    info = atoms.info
    mol_id = str(info.get("mol_id", f"row{row}"))
    if info.get("smiles"):
        return keys_from_record(record_from_smiles(str(info["smiles"]), mol_id))
    try:
        record = record_from_mol(mol_from_atoms(atoms, int(info.get("charge", 0))), mol_id)
    except ValueError:
        return MoleculeKeys(mol_id, str(info.get("inchikey", "")), "")
    keys = keys_from_record(record)
    if info.get("inchikey"):
        keys = MoleculeKeys(mol_id, str(info["inchikey"]), keys.scaffold, keys.smiles)
    return keys


def corpus_keys(path: str | Path, smiles_col: str | None = None,
                max_index: int | None = None) -> list[MoleculeKeys]:
    """Keys of every accepted molecule of a corpus (shard directory or molecule file).

    ``max_index``: for a shard directory, only the molecules with ``mol_index`` below it, the
    ones a pretraining run with ``corpus.max_molecules`` reads (None: all).
    Raises ContaminationError when the corpus holds no molecule at all (an empty file, or one
    whose every row is rejected, such as random bytes): an audit of nothing is no audit."""
    from molpre.data.shards import MOLECULES

    path = Path(path)
    if path.is_dir():
        table = path / MOLECULES
        if not table.is_file():
            raise FileNotFoundError(f"{path} has no {MOLECULES}: not a molpre shard directory")
        with open(table, newline="") as handle:
            keys = [MoleculeKeys(r["mol_id"], r["inchikey"], r["scaffold"], r["smiles"])
                    for r in csv.DictReader(handle)
                    if max_index is None or int(r["mol_index"]) < max_index]
        if not keys:
            raise ContaminationError(f"corpus {path}: its {MOLECULES} lists no molecule")
        return keys
    if not path.is_file():
        raise FileNotFoundError(f"corpus not found: {path} (give a shard directory or a molecule file)")
    from molpre.chem import read_molecules

    keys, rows, first_reason = [], 0, ""
    for record in read_molecules(path, smiles_col=smiles_col):
        rows += 1
        if record.ok:
            keys.append(keys_from_record(record))
        elif not first_reason:
            first_reason = f"row {record.row}: {record.error}"
    if not keys:
        detail = f"none of its {rows} rows is a molecule ({first_reason})" if rows else "it is empty"
        raise ContaminationError(f"corpus {path}: {detail}; give a molecule file (SMILES, CSV, "
                                 "SDF, XYZ) or a shard directory")
    return keys


def eval_keys(frames: Sequence) -> list[MoleculeKeys]:
    """Keys of evaluation frames (ase.Atoms), in order."""
    return [keys_from_atoms(a, i) for i, a in enumerate(frames)]


@dataclass
class AuditResult:
    """Overlap of the evaluation molecules with a corpus, per level.

    ``overlap[level]`` is a bool array [n_eval]: that evaluation molecule's key occurs in
    the corpus. ``counts`` / ``fractions`` summarize it; ``unknown`` counts evaluation
    molecules whose keys could not be computed (never counted as clean or overlapping).
    """

    n_eval: int
    n_corpus: int
    overlap: dict[str, np.ndarray]
    unknown: int = 0
    corpus_name: str = ""
    eval_name: str = ""
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {level: int(mask.sum()) for level, mask in self.overlap.items()}

    @property
    def fractions(self) -> dict[str, float]:
        return {level: int(mask.sum()) / max(self.n_eval, 1) for level, mask in self.overlap.items()}

    def summary(self) -> dict:
        return {"corpus": self.corpus_name, "eval": self.eval_name, "n_eval": self.n_eval,
                "n_corpus": self.n_corpus, "unknown": self.unknown, "counts": self.counts,
                "fractions": self.fractions, "examples": self.examples}

    def table(self) -> str:
        lines = [f"{'level':<10} {'overlap':>8} {'fraction':>9}"]
        for level in LEVELS:
            lines.append(f"{level:<10} {self.counts[level]:>8} {self.fractions[level]:>9.3%}")
        return "\n".join(lines)


def audit(corpus: Sequence[MoleculeKeys], evaluation: Sequence[MoleculeKeys],
          corpus_name: str = "", eval_name: str = "") -> AuditResult:
    """Which evaluation molecules occur in the corpus, by InChIKey, block and scaffold."""
    present = {level: {k.key(level) for k in corpus} - {""} for level in LEVELS}
    overlap = {level: np.array([bool(k.key(level)) and k.key(level) in present[level]
                                for k in evaluation], dtype=bool) for level in LEVELS}
    examples = {level: [k.mol_id for k, hit in zip(evaluation, overlap[level], strict=True)
                        if hit][:10] for level in LEVELS}
    unknown = sum(1 for k in evaluation if not k.inchikey)
    return AuditResult(len(evaluation), len(corpus), overlap, unknown, corpus_name, eval_name,
                       examples)


def clean_corpus(corpus: Iterable[MoleculeKeys], evaluation: Sequence[MoleculeKeys],
                 level: str = "block") -> tuple[list[MoleculeKeys], list[MoleculeKeys]]:
    """Split the corpus into (kept, dropped): dropped molecules share ``level`` with evaluation."""
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: choose one of {LEVELS}")
    banned = {k.key(level) for k in evaluation} - {""}
    kept, dropped = [], []
    for k in corpus:
        (dropped if k.key(level) in banned else kept).append(k)
    return kept, dropped


def write_corpus_csv(molecules: Iterable[MoleculeKeys], path: str | Path) -> Path:
    """Write ``smiles,mol_id,inchikey,scaffold`` rows (``molpre pretrain`` reads the SMILES)."""
    from molpre.outputs import atomic_output

    path = Path(path)
    with atomic_output(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "mol_id", "inchikey", "scaffold"])
        for k in molecules:
            writer.writerow([k.smiles, k.mol_id, k.inchikey, k.scaffold])
    return path


def check_probe_set(probe: Sequence[MoleculeKeys], test: Sequence[MoleculeKeys]) -> None:
    """Raise ContaminationError when a pretraining probe molecule is in the test set.

    A probe set that selects the pretraining checkpoint must come from the training pool:
    compared by mol_id and by full InChIKey.
    """
    test_ids = {k.mol_id for k in test}
    test_keys = {k.inchikey for k in test} - {""}
    leaked = [k.mol_id for k in probe if k.mol_id in test_ids or k.inchikey in test_keys]
    if leaked:
        raise ContaminationError(
            f"{len(leaked)} of the {len(probe)} probe molecules are in the test split "
            f"(e.g. {', '.join(leaked[:5])}): draw the pretraining probe from the training "
            "pool (probe.data) or leave the probe off")


def gain_by_overlap(errors_arm: np.ndarray, errors_ref: np.ndarray,
                    overlap: np.ndarray) -> dict[str, float]:
    """Mean per-molecule |error| difference ``arm - reference`` on clean and overlapping
    test molecules (negative = the arm is better); ``errors_*`` [n_test] absolute errors."""
    diff = np.asarray(errors_arm, float) - np.asarray(errors_ref, float)
    mask = np.asarray(overlap, bool)
    out = {"n_clean": int((~mask).sum()), "n_overlap": int(mask.sum())}
    out["clean_gain"] = float(np.nanmean(diff[~mask])) if (~mask).any() else float("nan")
    out["overlap_gain"] = float(np.nanmean(diff[mask])) if mask.any() else float("nan")
    return out
