"""The label store: an ASE database (SQLite file by default, a PostgreSQL URL where given).

One row per input conformer, ``status`` "ok" or "failed". Key-value pairs: mol_id, conf_id,
smiles, inchikey, spin (multiplicity), method, basis, level, pyscf_version, status, reason,
key (content hash), ladder, wall_s; ok rows add homo, lumo (eV), dipole_debye, converged,
scf_cycles. Energy (eV), forces (eV/Angstrom) and the dipole vector (e*Angstrom, ASE's unit)
are the row's calculator results (``row.energy``, ``row.forces``, ``row.dipole``) on ok rows
only. ase.db reserves ``charge`` (the sum of initial charges) and ``dipole``: the total charge
is stored as the int ``mol_charge`` *and* as initial charges spread evenly over the atoms, so
``row.charge`` is the total charge too; ``read_labels`` turns both back into ``info['charge']``.

Each write is its own transaction, so a process killed at any moment leaves whole rows only.
Use one writer per store (SQLite has one writer at a time; the runner writes from one process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ase.db
import numpy as np
from ase import Atoms
from ase import units as ase_units
from ase.calculators.singlepoint import SinglePointCalculator

#: Row keys copied from ``atoms.info`` (missing ones are stored as "" or 0).
INFO_STR_KEYS = ("mol_id", "smiles", "inchikey")
#: Key-value pairs that are bookkeeping, not ``atoms.info`` of the labeled conformer.
STORE_KEYS = ("mol_charge", "status", "reason", "key", "ladder", "wall_s")


def open_store(target: str | Path):
    """Connect to an ASE database by path (SQLite, ``.db``) or URL (``postgresql://...``).

    The target is passed to ``ase.db.connect`` unchanged; a missing PostgreSQL backend
    becomes a ``RuntimeError`` that says what to install.
    """
    name = str(target)
    try:
        return ase.db.connect(name)
    except ModuleNotFoundError as err:
        raise RuntimeError(
            f"cannot open {name!r}: {err} (PostgreSQL stores need `pip install ase-db-backends "
            "psycopg2-binary`)"
        ) from err


def stored_keys(db) -> dict[str, str]:
    """``{content key: status}`` of every row (for resume)."""
    return {row.key: row.status for row in db.select(include_data=False) if "key" in row}


def _storable(kvp: dict) -> tuple[dict, dict]:
    """ase.db refuses strings that read as numbers or booleans ("42", "1e3", "True"): store
    those as the number (queryable) and keep the exact string in the row's data."""
    from ase.db.core import convert_str_to_int_float_bool_or_str

    strings = {}
    for name, value in list(kvp.items()):
        if isinstance(value, str) and not isinstance(
                converted := convert_str_to_int_float_bool_or_str(value), str):
            strings[name] = value
            if isinstance(converted, float) and not np.isfinite(converted):
                del kvp[name]
            else:
                kvp[name] = converted
    return kvp, strings


def _key_values(atoms: Atoms, key: str, status: str, reason: str, meta: dict) -> dict:
    info = atoms.info
    kvp = {name: str(info.get(name) or "") for name in INFO_STR_KEYS}
    kvp.update(conf_id=int(info.get("conf_id", 0)), mol_charge=int(info.get("charge", 0)),
               spin=int(info.get("spin", 1)), status=status, reason=reason, key=key)
    kvp.update(meta)
    return kvp


def _stored_atoms(atoms: Atoms, charge: int) -> Atoms:
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    if charge:
        out.set_initial_charges(np.full(len(out), charge / len(out)))
    return out


def write_row(db, atoms: Atoms, key: str, result, meta: dict, replace: bool = False) -> int | None:
    """Write one result (a ``molpre.qc.QCResult``) as one row, in one transaction.

    Args:
        atoms: the input conformer (``info`` carries mol_id, conf_id, charge, spin, ...).
        key: its content key; if a row with this key exists the write is skipped
            (returns None) unless ``replace``, which swaps the old row(s) for the new one.
        meta: level-of-theory key-value pairs (method, basis, level, pyscf_version).

    Returns:
        the new row id, or None when skipped as a duplicate.
    """
    kvp = _key_values(atoms, key, "ok" if result.ok else "failed", result.reason, meta)
    kvp["ladder"] = ">".join(result.ladder)
    kvp["wall_s"] = round(float(result.wall_s), 3)
    stored = _stored_atoms(atoms, kvp["mol_charge"])
    kvp, strings = _storable(kvp)
    data = {"ladder": list(result.ladder), "strings": strings}
    if result.ok:
        kvp.update(homo=float(result.homo), converged=bool(result.converged),
                   scf_cycles=int(result.scf_cycles),
                   dipole_debye=float(np.linalg.norm(result.dipole)))
        if result.lumo is not None:
            kvp["lumo"] = float(result.lumo)
        stored.calc = SinglePointCalculator(
            stored, energy=float(result.energy), forces=result.forces,
            dipole=np.asarray(result.dipole) * ase_units.Debye,
        )
    with db:  # one transaction: the guard, the delete and the write commit together
        old = [row.id for row in db.select(key=key, include_data=False)]
        if old and not replace:
            return None
        if old:
            db.delete(old)
        return db.write(stored, key_value_pairs=kvp, data=data)


def iter_rows(db, status: str | None = None) -> Iterator:
    """Rows in id order, optionally only ``status`` "ok" or "failed"."""
    return db.select(status=status) if status else db.select()


def row_to_atoms(row) -> Atoms:
    """An ``ase.Atoms`` with energy/forces/dipole as SinglePointCalculator results (ok rows)
    and every key-value pair in ``info`` (``mol_charge`` -> ``info['charge']``). The row
    must carry its data (``db.select()`` does by default)."""
    atoms = Atoms(numbers=row.numbers, positions=row.positions)
    info = dict(row.key_value_pairs)
    info.update(row.data.get("strings", {}))  # exact strings ase.db would not keep as text
    info["charge"] = int(info.pop("mol_charge", round(float(row.get("charge") or 0))))
    atoms.info.update(info)
    if row.get("energy") is not None:
        results = {"energy": float(row.energy)}
        for name in ("forces", "dipole"):
            if row.get(name) is not None:
                results[name] = np.asarray(row.get(name), dtype=float)
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def read_labels(target: str | Path, include_failed: bool = False) -> list[Atoms]:
    """All ok rows (and failed ones if asked) of a label store as ``ase.Atoms``, in id order."""
    db = open_store(target)
    return [row_to_atoms(r) for r in iter_rows(db, None if include_failed else "ok")]


def export_extxyz(target: str | Path, out: str | Path, include_failed: bool = False) -> int:
    """Write the store as extxyz (``energy``/``forces`` as calculator results); returns rows."""
    import ase.io

    frames = read_labels(target, include_failed=include_failed)
    for atoms in frames:  # ASE writes "" unquoted, which breaks the comment line: drop them
        atoms.info = {k: v for k, v in atoms.info.items() if v is not None and v != ""}
    ase.io.write(str(out), frames, format="extxyz")
    return len(frames)
