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
In a SQLite store the content key is unique: a partial UNIQUE index on ASE's
``text_key_values`` table (``molpre_unique_key``) and a ``BEGIN IMMEDIATE`` transaction around
the check and the insert, so any number of concurrent writers (several ``molpre label`` runs
on one store) leave exactly one row per key. PostgreSQL stores keep the check and the insert in
one transaction but have no unique index: give them one writer.

Writes are serialized by an operating-system lock on ``STORE.flock`` (``filelock``: ``flock``
on POSIX), in place of ASE's own lock file ``STORE.lock``, which a run killed inside a write
left behind for ever. The OS releases the lock when its holder dies, so a leftover
``STORE.flock`` file is harmless, and a leftover ``STORE.lock`` is not read by molpre. The
name differs from ASE's so that a plain ``ase.db`` writer on the same store (which still takes
ASE's lock file) never waits on molpre's file; SQLite's own locking, the unique key index and
the ``BEGIN IMMEDIATE`` check-and-insert keep such mixed writers consistent. A writer waits at
most ``lock_timeout`` seconds (default 60, or ``$MOLPRE_STORE_LOCK_TIMEOUT``) for a *live*
holder, then fails with a message naming the file.
Keep SQLite stores on a local disk: ``flock`` and SQLite's own locks are unreliable over NFS.
A corrupt or truncated store, or one in a read-only folder, is a :class:`StoreError` with one
line saying so.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ase.db
import numpy as np
from ase import Atoms
from ase import units as ase_units
from ase.calculators.singlepoint import SinglePointCalculator
from filelock import FileLock

from molpre.errors import first_line
from molpre.outputs import atomic_output

log = logging.getLogger(__name__)

#: Row keys copied from ``atoms.info`` (missing ones are stored as "" or 0).
INFO_STR_KEYS = ("mol_id", "smiles", "inchikey")
#: Key-value pairs that are bookkeeping, not ``atoms.info`` of the labeled conformer.
STORE_KEYS = ("mol_charge", "status", "reason", "key", "ladder", "wall_s")


#: Seconds a writer waits for the ``STORE.flock`` held by another live writer (env overrides).
DEFAULT_LOCK_TIMEOUT_S = 60.0
LOCK_TIMEOUT_ENV = "MOLPRE_STORE_LOCK_TIMEOUT"
#: The partial unique index that makes the content key unique in a SQLite store.
UNIQUE_KEY_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS molpre_unique_key "
                    "ON text_key_values(value) WHERE key = 'key'")


class StoreError(RuntimeError):
    """A label store that cannot be used; ``str(err)`` is one line naming it and what to do."""


def writer_lock_path(store: str | Path) -> str:
    """The OS lock file molpre's writers share: ``STORE.flock`` (not ASE's ``STORE.lock``)."""
    return f"{store}.flock"


def _lock_timeout(value: float | None) -> float:
    if value is not None:
        return float(value)
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return float(text) if text else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        raise StoreError(f"${LOCK_TIMEOUT_ENV}={text!r} is not a number of seconds") from None


def _is_sqlite(db) -> bool:
    return getattr(db, "type", None) == "db"


@contextmanager
def store_errors(db) -> Iterator[None]:
    """Turn SQLite errors and a lock timeout into a one-line :class:`StoreError`."""
    name = getattr(db, "filename", db)
    try:
        yield
    except TimeoutError:
        lock = writer_lock_path(name)
        raise StoreError(
            f"label store {name} is locked: another running process has held {lock} for over "
            f"{db.lock.timeout:g} s (another molpre label writing to this store?); wait for it "
            f"or stop it, then re-run (${LOCK_TIMEOUT_ENV} sets the wait)") from None
    except sqlite3.IntegrityError:
        raise
    except OSError as err:  # the lock file or the folder cannot be created
        reason = os.strerror(err.errno) if err.errno else first_line(err)
        raise StoreError(f"cannot write label store {name}: {reason} ({err.filename}); choose "
                         "a writable folder") from None
    except sqlite3.DatabaseError as err:  # OperationalError, corrupt files, ...
        text = first_line(err)
        if isinstance(err, sqlite3.OperationalError) and ("readonly" in text
                                                          or "unable to open" in text):
            raise StoreError(f"cannot write label store {name}: {text} (choose a writable "
                             "folder, or check the file's permissions)") from None
        raise StoreError(f"label store {name} is unreadable ({text}): corrupt or truncated? "
                         "Restore it from a copy, or label into a new store") from None


def open_store(target: str | Path, *, write: bool = True, lock_timeout: float | None = None):
    """Connect to an ASE database by path (SQLite, ``.db``) or URL (``postgresql://...``).

    Args:
        target: passed to ``ase.db.connect`` unchanged.
        write: prepare the store for writing: create it (and its unique key index), waiting
            for another live writer's lock. ``write=False`` needs an existing store.
        lock_timeout: seconds to wait for ``STORE.flock`` (default: ``$MOLPRE_STORE_LOCK_TIMEOUT``
            or 60).

    Raises:
        StoreError (a RuntimeError): missing backend, missing store (``write=False``), a
            lock held too long by a live writer, a corrupt store or an unwritable folder; one line
            saying what to do.
    """
    name = str(target)
    if not write and "://" not in name and not Path(name).is_file():
        raise StoreError(f"no label store at {name}")
    try:
        db = ase.db.connect(name)
    except ModuleNotFoundError as err:
        raise StoreError(
            f"cannot open {name!r}: {err} (PostgreSQL stores need `pip install ase-db-backends "
            "psycopg2-binary`)"
        ) from err
    if db.lock is not None:  # SQLite/JSON files: an OS lock that dies with its holder
        db.lock = FileLock(writer_lock_path(db.filename), timeout=_lock_timeout(lock_timeout))
    if write and _is_sqlite(db):
        with store_errors(db):
            Path(db.filename).parent.mkdir(parents=True, exist_ok=True)
        _prepare_sqlite(db)
    return db


def _prepare_sqlite(db) -> None:
    """Create the store's tables and the unique key index; fail early on a held lock."""
    with store_errors(db):
        if db.lock is not None:
            with db.lock:  # a writer that holds it too long fails here, before any work
                pass
        with db:
            db.connection.execute("BEGIN IMMEDIATE")
            list(db.select(limit=1, include_data=False))  # ASE creates its tables here
        try:
            with db:
                db.connection.execute(UNIQUE_KEY_INDEX)
        except sqlite3.IntegrityError:
            log.warning("%s holds duplicate content keys (written by an older molpre); new "
                        "writes are still checked, but no unique index could be added",
                        db.filename)


#: The status :func:`stored_keys` gives an ok row without the forces a run asks for.
NO_FORCES = "ok-without-forces"


def stored_keys(db, forces: bool = False) -> dict[str, str]:
    """``{content key: status}`` of every row (for resume); with ``forces``, an ok row
    stored without forces reads :data:`NO_FORCES` (its energy alone does not answer the run)."""
    with store_errors(db):
        return {row.key: (NO_FORCES if forces and row.status == "ok" and row.get("forces") is None
                          else row.status)
                for row in db.select(include_data=False) if "key" in row}


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
    if "perturbation" in info:  # molpre label --perturb: which copy, displacement (Angstrom)
        kvp.update(perturbation=int(info["perturbation"]), perturb_sigma=float(info["perturb_sigma"]))
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
    if result.ok:  # a force field has no orbitals and no dipole: those keys stay absent
        kvp.update(converged=bool(result.converged), scf_cycles=int(result.scf_cycles))
        if result.homo is not None:
            kvp["homo"] = float(result.homo)
        if result.lumo is not None:
            kvp["lumo"] = float(result.lumo)
        extra = {}
        if result.dipole is not None:
            kvp["dipole_debye"] = float(np.linalg.norm(result.dipole))
            extra["dipole"] = np.asarray(result.dipole) * ase_units.Debye
        stored.calc = SinglePointCalculator(
            stored, energy=float(result.energy), forces=result.forces, **extra)
    try:
        with store_errors(db):
            return _check_and_insert(db, stored, key, kvp, data, replace)
    except sqlite3.IntegrityError:  # stored meanwhile by a writer outside this transaction
        return None


def _check_and_insert(db, stored: Atoms, key: str, kvp: dict, data: dict,
                      replace: bool) -> int | None:
    """The existence check and the write in one transaction (SQLite: taken IMMEDIATE, so no
    other writer can insert the same key between the check and the write)."""
    with db:
        if _is_sqlite(db):
            db.connection.execute("BEGIN IMMEDIATE")
        old = [row.id for row in db.select(key=key, include_data=False)]
        if old and not replace:
            return None
        if not old:
            return db.write(stored, key_value_pairs=kvp, data=data)
        new_id = db.write(stored, key_value_pairs=kvp, data=data, id=old[0])  # keeps its place
        if old[1:]:  # duplicates left by an older molpre
            db.delete(old[1:])
        return new_id


def iter_rows(db, status: str | None = None) -> Iterator:
    """Rows in id order, optionally only ``status`` "ok" or "failed"."""
    with store_errors(db):
        yield from (db.select(status=status) if status else db.select())


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
    """All ok rows (and failed ones if asked) of a label store as ``ase.Atoms``, in id order.

    Raises StoreError for a missing, corrupt or truncated store."""
    db = open_store(target, write=False)
    return [row_to_atoms(r) for r in iter_rows(db, None if include_failed else "ok")]


def export_extxyz(target: str | Path, out: str | Path, include_failed: bool = False) -> int:
    """Write the store as extxyz (``energy``/``forces`` as calculator results); returns rows.

    ``out`` is replaced only once every frame is written (a temporary file renamed onto it)."""
    import ase.io

    frames = read_labels(target, include_failed=include_failed)
    for atoms in frames:  # ASE writes "" unquoted, which breaks the comment line: drop them
        atoms.info = {k: v for k, v in atoms.info.items() if v is not None and v != ""}
    with atomic_output(out) as handle:
        ase.io.write(handle, frames, format="extxyz")
    return len(frames)
