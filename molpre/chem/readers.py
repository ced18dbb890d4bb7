"""Read molecule files as a lazy stream of records, one per input row.

Formats (chosen by suffix, ``.gz`` allowed): ``.smi``/``.txt``/``.smiles`` (SMILES, then an
optional id; ``#`` lines are comments, a first line starting with ``smiles`` is a header),
``.csv``/``.tsv`` (SMILES column found by name or given), ``.sdf``, ``.xyz``/``.extxyz``.

``row`` is the 1-based index of a record among the data rows (header and comment lines do not
count; blank lines do and become error rows). Ids come from the file where it has them,
otherwise ``<file stem>-<row>``. File-level problems (missing file, unknown format, a CSV
without a usable SMILES column) raise :class:`InputError` when ``read_molecules`` is called,
before any molecule is read; row-level problems become error records.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

from rdkit import Chem, rdBase

from molpre.chem.molecules import (
    IntakeConfig,
    MoleculeRecord,
    error_record,
    record_from_mol,
    record_from_smiles,
)
from molpre.chem.xyz import read_xyz

#: CSV column names recognised as SMILES (case-insensitive), in order of preference.
SMILES_COLUMNS = ("smiles", "canonical_smiles", "isomeric_smiles", "smi", "smiles_string")
#: CSV column names recognised as molecule ids (case-insensitive), in order of preference.
ID_COLUMNS = ("mol_id", "id", "molecule_id", "compound_id", "name", "title")
#: How many rows of a CSV column are sniffed for parsable SMILES before any work starts.
SNIFF_ROWS = 50

FORMATS = {".smi": "smi", ".txt": "smi", ".smiles": "smi", ".csv": "csv", ".tsv": "csv",
           ".sdf": "sdf", ".xyz": "xyz", ".extxyz": "xyz"}


class InputError(ValueError):
    """The input file as a whole cannot be read (one clear message, before any work)."""


def _open_text(path: Path) -> io.TextIOBase:
    """Text handle; undecodable bytes become U+FFFD (so that row fails to parse, not the run)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="", errors="replace")
    return open(path, newline="", errors="replace")


def _suffix(path: Path) -> str:
    """The format suffix, looking through a trailing ``.gz``."""
    return (Path(path.stem).suffix if path.suffix == ".gz" else path.suffix).lower()


def _format_of(path: Path) -> str:
    suffix = _suffix(path)
    try:
        return FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise InputError(f"{path.name}: unknown format {suffix!r}; use one of {known}") from None


def _stem(path: Path) -> str:
    return Path(path.stem).stem if path.suffix == ".gz" else path.stem


def read_molecules(path: str | Path, smiles_col: str | None = None, id_col: str | None = None,
                   config: IntakeConfig | None = None) -> Iterator[MoleculeRecord]:
    """Stream ``MoleculeRecord``s from a molecule file, in file order, one per input row.

    Raises InputError now (not on first ``next``) for file-level problems.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = _format_of(path)
    if kind == "csv":
        return _read_csv(path, smiles_col, id_col, config)
    readers: dict[str, Callable[..., Iterator[MoleculeRecord]]] = {
        "smi": _read_smi, "sdf": _read_sdf, "xyz": read_xyz}
    return readers[kind](path, config)


def _read_smi(path: Path, config: IntakeConfig | None) -> Iterator[MoleculeRecord]:
    stem, row, first = _stem(path), 0, True
    with _open_text(path) as handle:
        for line in handle:
            text = line.rstrip("\r\n")
            if text.lstrip().startswith("#"):
                continue
            parts = text.split(maxsplit=1)
            if first and parts and parts[0].lower() in ("smiles", "smi"):
                first = False
                continue
            first = False
            row += 1
            mol_id = parts[1].strip() if len(parts) > 1 else f"{stem}-{row}"
            if not parts:
                yield error_record(row, text, mol_id, "empty line")
                continue
            yield record_from_smiles(parts[0], mol_id, row=row, config=config)


def _pick_column(header: list[str], wanted: str | None, names: tuple[str, ...],
                 path: Path, what: str) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted.strip().lower() not in lowered:
            raise InputError(f"{path.name}: no {what} column {wanted!r}; columns are {header}")
        return lowered.index(wanted.strip().lower())
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _sniff_smiles(path: Path, delimiter: str, column: int, name: str) -> None:
    """Raise InputError when none of the first SNIFF_ROWS values of ``column`` parse."""
    with _open_text(path) as handle:
        rows = itertools.islice(csv.reader(handle, delimiter=delimiter), 1, SNIFF_ROWS + 1)
        values = [r[column].strip() for r in rows if len(r) > column and r[column].strip()]
    if not values:
        return  # an empty file or column: every row will be its own error row
    with rdBase.BlockLogs():
        if any(Chem.MolFromSmiles(v, sanitize=False) is not None for v in values):
            return
    raise InputError(f"{path.name}: column {name!r} holds no parsable SMILES in its first "
                     f"{len(values)} values; pick the column with --smiles-col")


def _csv_layout(path: Path, smiles_col: str | None, id_col: str | None):
    delimiter = "\t" if _suffix(path) == ".tsv" else ","
    with _open_text(path) as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    if not header:
        raise InputError(f"{path.name}: empty CSV (no header row)")
    s_idx = _pick_column(header, smiles_col, SMILES_COLUMNS, path, "SMILES")
    if s_idx is None:
        raise InputError(f"{path.name}: no SMILES column (looked for {', '.join(SMILES_COLUMNS)}"
                         f"; columns are {header}); name it with --smiles-col")
    i_idx = _pick_column(header, id_col, ID_COLUMNS, path, "id")
    _sniff_smiles(path, delimiter, s_idx, header[s_idx])
    return delimiter, s_idx, i_idx


def _read_csv(path: Path, smiles_col: str | None, id_col: str | None,
              config: IntakeConfig | None) -> Iterator[MoleculeRecord]:
    delimiter, s_idx, i_idx = _csv_layout(path, smiles_col, id_col)  # raises now, not lazily
    return _csv_rows(path, delimiter, s_idx, i_idx, config)


def _csv_rows(path: Path, delimiter: str, s_idx: int, i_idx: int | None,
              config: IntakeConfig | None) -> Iterator[MoleculeRecord]:
    stem = _stem(path)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        for row, fields in enumerate(reader, start=1):
            smiles = fields[s_idx] if len(fields) > s_idx else ""
            given = fields[i_idx].strip() if i_idx is not None and len(fields) > i_idx else ""
            mol_id = given or f"{stem}-{row}"
            if not any(f.strip() for f in fields):
                yield error_record(row, delimiter.join(fields), mol_id, "empty line")
                continue
            yield record_from_smiles(smiles, mol_id, row=row, config=config)


def _read_sdf(path: Path, config: IntakeConfig | None) -> Iterator[MoleculeRecord]:
    from molpre.chem.xyz import geometry_problem

    stem = _stem(path)
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
        with rdBase.BlockLogs():
            supplier = Chem.ForwardSDMolSupplier(handle, sanitize=False, removeHs=False)
            for row, mol in enumerate(supplier, start=1):
                name = mol.GetProp("_Name").strip() if mol is not None and mol.HasProp(
                    "_Name") else ""
                mol_id, text = name or f"{stem}-{row}", name or f"SDF record {row}"
                if mol is None:
                    yield error_record(row, text, mol_id, "unreadable SDF record")
                    continue
                if mol.GetNumConformers() and mol.GetConformer().Is3D():
                    problem = geometry_problem(mol.GetConformer().GetPositions())
                    if problem:
                        yield error_record(row, text, mol_id, problem)
                        continue
                yield record_from_mol(mol, mol_id, row=row, input=text, config=config)
