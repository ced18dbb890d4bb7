"""The ASE-db label store: rows, the dedupe guard, reading back, extxyz export, URLs."""

import multiprocessing

import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import molecule

from molpre.data.store import (
    StoreError,
    export_extxyz,
    open_store,
    read_labels,
    stored_keys,
    write_row,
)
from molpre.qc.pyscf import QCResult

META = {"method": "HF", "basis": "sto-3g", "level": "hf/sto-3g/df", "pyscf_version": "2.14.0"}


def conformer(name="H2O", **info):
    atoms = molecule(name)
    atoms.info.update({"mol_id": name, "conf_id": 3, "smiles": "O", "inchikey": "XLYO",
                       "charge": 0, "spin": 1, **info})
    return atoms


def ok_result(n_atoms):
    return QCResult(ok=True, energy=-2039.5, forces=np.arange(3.0 * n_atoms).reshape(-1, 3),
                    homo=-10.6, lumo=16.2, dipole=np.array([0.0, 0.0, 1.7]), converged=True,
                    scf_cycles=5, wall_s=0.25, ladder=["diis"])


def test_ok_and_failed_rows_follow_the_schema(tmp_path):
    db = open_store(tmp_path / "l.db")
    water, ion = conformer(), conformer("OH", charge=-1)
    assert write_row(db, water, "k1", ok_result(3), META) == 1
    write_row(db, ion, "k2", QCResult(ok=False, reason="bad", ladder=["diis"]), META)
    ok, failed = db.get(key="k1"), db.get(key="k2")
    assert ok.energy == -2039.5 and ok.forces.shape == (3, 3) and ok.status == "ok"
    assert ok.dipole_debye == pytest.approx(1.7) and ok.homo == -10.6 and ok.converged
    for name in ("mol_id", "conf_id", "smiles", "inchikey", "spin", "method", "basis", "level",
                 "pyscf_version", "reason", "scf_cycles", "wall_s"):
        assert name in ok.key_value_pairs
    assert failed.status == "failed" and failed.reason == "bad" and failed.get("energy") is None
    assert failed.mol_charge == -1 and failed.charge == pytest.approx(-1)
    assert stored_keys(db) == {"k1": "ok", "k2": "failed"}


def test_duplicate_key_is_not_written_twice_unless_replacing(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", QCResult(ok=False, reason="slow"), META)
    assert write_row(db, conformer(), "k1", ok_result(3), META) is None
    assert db.count() == 1 and db.get(key="k1").status == "failed"
    write_row(db, conformer(), "k1", ok_result(3), META, replace=True)
    assert db.count() == 1 and db.get(key="k1").status == "ok"


def test_read_labels_gives_calculator_results_and_info(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer("OH", charge=-1), "k1", ok_result(2), META)
    write_row(db, conformer(), "k2", QCResult(ok=False, reason="bad"), META)
    (atoms,) = read_labels(tmp_path / "l.db")
    assert atoms.get_potential_energy() == -2039.5 and atoms.get_forces().shape == (2, 3)
    assert atoms.info["charge"] == -1 and atoms.info["mol_id"] == "OH"
    assert not atoms.get_initial_charges().any()
    assert len(read_labels(tmp_path / "l.db", include_failed=True)) == 2


def test_export_extxyz_round_trips_through_ase(tmp_path):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", ok_result(3), META)
    write_row(db, conformer("CH4"), "k2", QCResult(ok=False, reason="odd electrons"), META)
    assert export_extxyz(tmp_path / "l.db", tmp_path / "l.extxyz") == 1
    (atoms,) = ase.io.read(tmp_path / "l.extxyz", index=":")
    assert atoms.get_potential_energy() == -2039.5
    np.testing.assert_allclose(atoms.get_forces(), ok_result(3).forces)
    assert atoms.info["smiles"] == "O" and atoms.info["conf_id"] == 3
    export_extxyz(tmp_path / "l.db", tmp_path / "all.extxyz", include_failed=True)
    frames = ase.io.read(tmp_path / "all.extxyz", index=":")
    assert frames[1].info["reason"] == "odd electrons" and frames[1].calc is None


def test_postgresql_url_is_passed_to_ase_db():
    url = "postgresql://user:secret@db.example:5432/labels"
    try:
        db = open_store(url)
    except RuntimeError as err:  # ase's PostgreSQL backend is a separate package
        assert url in str(err) and "ase_db_backends" in str(err)
    else:
        assert type(db).__name__ == "PostgreSQLDatabase"


def test_number_like_strings_survive_exactly(tmp_path):
    db = open_store(tmp_path / "l.db")
    atoms = conformer(mol_id="007", smiles="True", inchikey="nan")
    write_row(db, atoms, "k1", ok_result(3), META)
    row = db.get(key="k1")
    assert row.mol_id == 7  # ase.db keeps number-like strings only as numbers
    (back,) = read_labels(tmp_path / "l.db")
    assert (back.info["mol_id"], back.info["smiles"], back.info["inchikey"]) == ("007", "True", "nan")


def _write_keys(path, keys, barrier):
    """One writer process: open the store, wait for the others, write every key."""
    db = open_store(path)
    barrier.wait()
    return sum(write_row(db, conformer(), key, ok_result(3), META) is not None for key in keys)


def test_concurrent_writer_processes_leave_one_row_per_key(tmp_path):
    path, keys, n_writers = tmp_path / "l.db", [f"k{i}" for i in range(25)], 4
    open_store(path)  # created once, as the runner does before starting work
    context = multiprocessing.get_context("fork")  # real processes, started fast
    with context.Manager() as manager:
        barrier = manager.Barrier(n_writers)
        with context.Pool(n_writers) as pool:
            written = pool.starmap(_write_keys, [(path, keys, barrier)] * n_writers)
    db = open_store(path)
    assert sorted(row.key for row in db.select()) == sorted(keys)
    assert sum(written) == len(keys)  # every key written by exactly one writer


def test_the_store_refuses_a_second_row_with_the_same_key(tmp_path):
    import sqlite3

    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", ok_result(3), META)
    raw = ase.db.connect(str(tmp_path / "l.db"))  # a writer that skips molpre's check
    with pytest.raises(sqlite3.IntegrityError):
        raw.write(conformer(), key="k1")
    assert db.count() == 1


def test_a_lock_file_left_by_a_killed_writer_does_not_block(tmp_path):
    path = tmp_path / "l.db"
    open_store(path)
    (tmp_path / "l.db.lock").write_text("")  # what ASE's own lock left after a kill
    (tmp_path / "l.db.flock").write_text("")  # molpre's, left by any earlier writer
    db = open_store(path, lock_timeout=0.3)
    assert write_row(db, conformer(), "k1", ok_result(3), META) == 1


def _hold_lock(path, held, release) -> None:
    from filelock import FileLock

    with FileLock(f"{path}.flock"):
        held.set()
        release.wait(30)


def test_a_lock_held_by_a_live_writer_fails_with_a_message_naming_it(tmp_path):
    path = tmp_path / "l.db"
    db = open_store(path)
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(60)
        with pytest.raises(StoreError, match=r"locked: another running process .*l\.db\.flock"):
            open_store(path, lock_timeout=0.3)
        db.lock.timeout = 0.3
        with pytest.raises(StoreError, match="locked"):
            write_row(db, conformer(), "k1", ok_result(3), META)
    finally:
        release.set()
        holder.join(30)
    assert write_row(db, conformer(), "k1", ok_result(3), META) == 1


def test_a_writer_killed_while_holding_the_lock_frees_it(tmp_path):
    path = tmp_path / "l.db"
    db = open_store(path, lock_timeout=5)
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(path, held, release))
    holder.start()
    assert held.wait(60)
    holder.kill()  # SIGKILL inside the lock: the old lock file stayed "held" for ever
    holder.join(30)
    assert write_row(db, conformer(), "k1", ok_result(3), META) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_store_is_a_one_line_store_error(tmp_path, damage):
    path = tmp_path / "l.db"
    db = open_store(path)
    with db:  # one transaction: fast
        for i in range(200):
            db.write(conformer(), key=f"k{i}", status="ok", data={"pad": list(range(100))})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"garbage" * 100)
    with pytest.raises(StoreError, match="l.db is unreadable .*corrupt or truncated") as info:
        read_labels(path)
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="unreadable"):
        stored_keys(open_store(path, write=False))


def test_missing_store_is_not_created_by_reading(tmp_path):
    with pytest.raises(StoreError, match="no label store at"):
        read_labels(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_export_replaces_its_output_only_when_complete(tmp_path, monkeypatch):
    db = open_store(tmp_path / "l.db")
    write_row(db, conformer(), "k1", ok_result(3), META)
    out = tmp_path / "l.extxyz"
    out.write_text("previous export\n")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ase.io, "write", crash)
    with pytest.raises(OSError, match="disk full"):
        export_extxyz(tmp_path / "l.db", out)
    assert out.read_text() == "previous export\n"
    left = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".flock")  # the OS lock's
    assert left == ["l.db", "l.extxyz"]  # no temp file left


def test_a_store_with_old_duplicates_still_opens_and_a_retry_leaves_one_row(tmp_path, caplog):
    path = tmp_path / "old.db"
    raw = ase.db.connect(str(path))
    for _ in range(2):  # what concurrent runs of an older molpre could leave
        raw.write(conformer(), key="k1", status="failed")
    db = open_store(path)
    assert "duplicate content keys" in caplog.text
    assert write_row(db, conformer(), "k1", ok_result(3), META, replace=True) is not None
    assert [row.status for row in db.select(key="k1")] == ["ok"]
