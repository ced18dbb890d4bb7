"""The embedded default corpus: RDKit's NCI sample, so the main job needs no download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rdkit import RDConfig


def corpus_path() -> Path:
    """``RDConfig.RDDataDir/NCI/first_5K.smi`` (4,999 NCI molecules, ``SMILES<tab>number``)."""
    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


def default_corpus(limit: int | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(mol_id, smiles)`` for the NCI sample, in file order; ids are ``nci-<number>``.

    The ``nci-`` prefix keeps ids non-numeric: ASE reads a purely numeric extxyz value back as
    an int. ``limit`` stops after that many molecules.
    """
    path = corpus_path()
    if not path.is_file():
        raise FileNotFoundError(f"RDKit's NCI sample is missing from this install: {path}")
    count = 0
    with open(path) as handle:
        for line in handle:
            parts = line.split()
            if not parts:
                continue
            if limit is not None and count >= limit:
                return
            number = parts[1] if len(parts) > 1 else str(count + 1)
            count += 1
            yield f"nci-{number}", parts[0]
