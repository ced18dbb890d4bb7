"""What the Predictor accepts: inputs turned into jobs, geometries checked as intake does.

``items_and_ids`` turns ``Predictor.predict``'s argument (one SMILES, RDKit Mol, ASE Atoms,
MoleculeRecord, a list of them, or a pandas DataFrame with a SMILES column) into one item
per row plus ids; ``atoms_problem`` is the reason an ASE geometry cannot be predicted (empty,
too many atoms, periodic, non-finite, overlapping atoms, elements the model has no reference
energy for) or None. A bad row becomes an error row; a bad call (``None``, ids of the wrong
length, a DataFrame without a SMILES column) raises one ValueError.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols

from molpre.chem.readers import ID_COLUMNS, SMILES_COLUMNS
from molpre.errors import first_line
from molpre.inference.options import MAX_ATOMS


@dataclass
class Job:
    """One input row on its way to a result row: conformers to predict, or an error."""

    id: str
    smiles: str = ""
    conformers: list[Atoms] = field(default_factory=list)
    error: str | None = None
    record: Any = None  # a MoleculeRecord still waiting for conformers


def items_and_ids(inputs: Any, ids: list | None, smiles_col: str | None = None,
                  id_col: str | None = None) -> tuple[Iterable, Iterable, int | None]:
    """``(items, ids, total)``: ids default to the id column, a record's ``mol_id`` or
    ``mol-<row>``. A generator stays lazy (``total`` None, bounded memory); lists,
    Series and DataFrames are checked against ``ids`` (same length) up front."""
    if inputs is None:
        raise ValueError("predict() got None: pass SMILES, RDKit Mols, ASE Atoms, a list of "
                         "them or a DataFrame with a SMILES column")
    if isinstance(inputs, pd.DataFrame):
        items, frame_ids = frame_items(inputs, smiles_col, id_col)
        ids = ids if ids is not None else frame_ids
    else:
        items = _as_items(inputs)
    if not isinstance(items, list):
        if ids is not None:
            raise ValueError("ids cannot be given with a generator of inputs: pass a list")
        return items, itertools.repeat(None), None
    if ids is None:
        ids = [None] * len(items)
    ids = list(ids)
    if len(ids) != len(items):
        raise ValueError(f"ids has {len(ids)} entries for {len(items)} inputs: give one id per "
                         "input (or none)")
    return items, ids, len(items)


def default_id(item: Any, ident: Any, row: int) -> str:
    """The given id, else a MoleculeRecord's ``mol_id``, else ``mol-<row>`` (1-based)."""
    if ident is not None and str(ident) != "":
        return str(ident)
    mol_id = getattr(item, "mol_id", None)
    return str(mol_id) if mol_id else f"mol-{row}"


def _as_items(inputs: Any) -> Iterable:
    from rdkit import Chem

    from molpre.chem import MoleculeRecord

    if isinstance(inputs, str | Atoms | Chem.Mol | MoleculeRecord):
        return [inputs]
    if isinstance(inputs, pd.Series):
        return inputs.tolist()
    if isinstance(inputs, Iterator):
        return inputs
    try:
        return list(inputs)
    except TypeError:
        raise ValueError(f"predict() cannot read a {type(inputs).__name__}: pass SMILES, RDKit "
                         "Mols, ASE Atoms, a list of them or a DataFrame") from None


def find_column(columns: list, wanted: str | None, names: tuple[str, ...],
                what: str) -> str | None:
    """The column named ``wanted`` or the first of ``names``, case-insensitively."""
    lowered = {str(c).strip().lower(): c for c in reversed(columns)}
    if wanted is not None:
        if wanted.strip().lower() not in lowered:
            raise ValueError(f"no {what} column {wanted!r}; columns are {list(columns)}")
        return lowered[wanted.strip().lower()]
    return next((lowered[n] for n in names if n in lowered), None)


def frame_items(frame: pd.DataFrame, smiles_col: str | None,
                id_col: str | None) -> tuple[list, list | None]:
    """Items (SMILES text, or Atoms from an ``xyz`` column) and ids of a DataFrame's rows."""
    columns = list(frame.columns)
    s_col = find_column(columns, smiles_col, SMILES_COLUMNS, "SMILES")
    xyz_col = find_column(columns, None, ("xyz",), "xyz")
    if s_col is None and xyz_col is None:
        raise ValueError(f"the DataFrame has no SMILES column (looked for "
                         f"{', '.join(SMILES_COLUMNS)}, any case; columns are {columns}); "
                         "name it with smiles_col=")
    i_col = find_column(columns, id_col, ID_COLUMNS, "id")
    smiles = frame[s_col].tolist() if s_col is not None else [""] * len(frame)
    xyz = frame[xyz_col].tolist() if xyz_col is not None else [None] * len(frame)
    items = [_frame_item(s, x) for s, x in zip(smiles, xyz, strict=True)]
    ids = frame[i_col].tolist() if i_col is not None else None
    return items, ids


def _frame_item(smiles: Any, xyz: Any) -> Any:
    if isinstance(xyz, str) and xyz.strip():
        try:
            return atoms_from_text(xyz, smiles)
        except Exception as err:  # ASE raises many types on malformed text
            return ValueError(f"unreadable xyz text: {first_line(err)}")
    return "" if smiles is None or (isinstance(smiles, float) and np.isnan(smiles)) else str(smiles)


def atoms_from_text(text: str, smiles: Any = None) -> Atoms:
    """One conformer from (ext)xyz text; ``smiles`` kept in ``atoms.info``."""
    import ase.io

    atoms = ase.io.read(io.StringIO(text), format="extxyz")
    if isinstance(smiles, str) and smiles:
        atoms.info["smiles"] = smiles
    return atoms


def atoms_problem(atoms: Atoms, elements: set[int], max_atoms: int = MAX_ATOMS) -> str | None:
    """Why ``atoms`` cannot be predicted, or None (checks in order of cost; size first)."""
    from molpre.chem import geometry_problem

    if len(atoms) == 0:
        return "empty frame (no atoms)"
    if len(atoms) > max_atoms:
        return f"too large: {len(atoms)} atoms > {max_atoms} (raise max_atoms to allow it)"
    if np.any(atoms.pbc):
        return "periodic boundary conditions are not supported (molecules only)"
    problem = geometry_problem(atoms.positions)
    if problem:
        return problem
    return unsupported_elements(atoms.numbers, elements)


def known_mask(numbers_list, elements) -> np.ndarray:
    """[n_molecules] bool: every atomic number of that molecule is in ``elements``."""
    known = {int(z) for z in elements}
    return np.array([{int(z) for z in numbers} <= known for numbers in numbers_list], dtype=bool)


def unsupported_elements(numbers, elements: set[int]) -> str | None:
    """``unsupported element X, Y: ...`` for atomic numbers outside ``elements``, or None."""
    missing = sorted({int(z) for z in numbers} - set(elements))
    if not missing:
        return None
    names = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z)
                      for z in missing)
    return f"unsupported element {names}: the model was not trained on it"


def job_for(item: Any, ident: str, elements: set[int], max_atoms: int) -> Job:
    """A job: Atoms checked and ready, or a MoleculeRecord waiting for conformers, or an error."""
    from rdkit import Chem

    from molpre.chem import IntakeConfig, MoleculeRecord, record_from_mol, record_from_smiles

    if isinstance(item, BaseException):
        return Job(ident, error=first_line(item))
    if isinstance(item, Atoms):
        smiles = str(item.info.get("smiles", ""))
        problem = atoms_problem(item, elements, max_atoms)
        return Job(ident, smiles, error=problem) if problem else Job(ident, smiles, [item])
    config = IntakeConfig(max_atoms=max_atoms)
    if isinstance(item, MoleculeRecord):
        record = item
    elif isinstance(item, str):
        record = record_from_smiles(item, ident, config=config)
    elif isinstance(item, Chem.Mol):
        record = record_from_mol(item, ident, config=config)
    else:
        return Job(ident, error=f"unsupported input type {type(item).__name__}")
    if not record.ok:
        return Job(ident, record.smiles or record.input, error=record.error)
    return Job(ident, record.smiles, record=record)


def merge_frame(frame: pd.DataFrame, result: pd.DataFrame) -> pd.DataFrame:
    """The input's columns (renamed ``input_<name>`` where a result column has the name),
    then the result columns; same rows, same order, the input's index."""
    taken = set(result.columns)
    kept = frame.rename(columns={c: f"input_{c}" for c in frame.columns if c in taken})
    return pd.concat([kept, result.set_axis(frame.index)], axis=1)
