"""`molpre label` / `molpre export`: in-process runs, clear errors, and SIGKILL + resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import ase.io
import pytest
from ase.build import molecule
from click.testing import CliRunner

from molpre.cli import main

HF = ["--method", "hf", "--basis", "sto-3g"]


def write_input(path, names=("H2", "H2O", "CH3", "CH4"), rattle=0.0):
    frames = []
    for conf_id, name in enumerate(names):
        atoms = molecule(name)
        atoms.info = {"mol_id": name, "conf_id": conf_id, "smiles": "", "charge": 0, "spin": 1}
        if rattle:
            atoms.rattle(rattle, seed=conf_id)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return frames


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def test_label_then_export_in_process(tmp_path):
    src, db, out = tmp_path / "in.extxyz", tmp_path / "l.db", tmp_path / "out.extxyz"
    write_input(src)
    # one worker: rows are stored (and exported) in input order; with several, in finish order
    result = invoke("label", src, "-o", db, *HF, "--forces", "--workers", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "4 conformers: 3 ok, 1 failed, 0 skipped" in result.output
    again = invoke("label", src, "-o", db, *HF, "--threads", "1")
    assert "0 ok, 0 failed, 4 skipped" in again.output
    exported = invoke("export", db, "-o", out)
    assert exported.exit_code == 0 and "wrote 3 labels" in exported.output
    frames = ase.io.read(out, index=":")
    assert [f.info["mol_id"] for f in frames] == ["H2", "H2O", "CH4"]
    assert all(f.get_potential_energy() < 0 and f.get_forces().shape == (len(f), 3)
               for f in frames)
    invoke("export", db, "-o", out, "--include-failed")
    assert "odd electron count" in ase.io.read(out, index=":")[2].info["reason"]


@pytest.mark.parametrize("args, message", [
    (["--workers", "999", "--threads", "999"], "cores"),
    (["--method", "nosuchxc"], "unknown method"),
    (["--basis", "nosuchbasis"], "unknown basis"),
    (["--grid-level", "12"], "grid_level"),
])
def test_bad_options_give_one_line_errors(tmp_path, args, message):
    src = tmp_path / "in.extxyz"
    write_input(src, names=("H2",))
    result = invoke("label", src, "-o", tmp_path / "l.db", *HF, *args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_export_of_a_missing_store_is_an_error(tmp_path):
    result = invoke("export", tmp_path / "missing.db", "-o", tmp_path / "x.extxyz")
    assert result.exit_code == 2 and "no label store" in result.output


def count_rows(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return con.execute("SELECT COUNT(*) FROM systems").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def label_cmd(src, db):
    return [sys.executable, "-m", "molpre", "label", str(src), "-o", str(db), "--method", "hf",
            "--basis", "6-31g", "--forces", "--threads", "1"]


def test_sigkill_mid_run_then_rerun_gives_every_row_once(tmp_path):
    src, db = tmp_path / "in.extxyz", tmp_path / "l.db"
    frames = write_input(src, names=["CH4", "H2O", "NH3", "C2H6"] * 3, rattle=0.05)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed_at = []
    for target in (2, 6):  # kill twice, at different points of the run
        proc = subprocess.Popen(label_cmd(src, db), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while count_rows(db) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at.append(count_rows(db))
    assert killed_at[0] < killed_at[1] < len(frames), f"run was not killed mid-way: {killed_at}"
    done = subprocess.run(label_cmd(src, db), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{killed_at[1]} skipped" in done.stdout
    with sqlite3.connect(db) as con:
        keys = con.execute(
            "SELECT value FROM text_key_values WHERE key = 'key'").fetchall()
    assert len(keys) == len(frames) == len(set(keys))
    labels = ase.io.read(src, index=":")
    from molpre.data.store import read_labels

    stored = {(a.info["mol_id"], a.info["conf_id"]) for a in read_labels(db)}
    assert stored == {(a.info["mol_id"], a.info["conf_id"]) for a in labels}


def test_two_label_processes_on_one_store_write_each_key_once(tmp_path):
    src, db = tmp_path / "in.extxyz", tmp_path / "l.db"
    frames = write_input(src, names=["H2", "H2O", "NH3", "CH4", "LiH", "HF"], rattle=0.02)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "molpre", "label", str(src), "-o", str(db), *HF,
           "--workers", "1", "--threads", "1", "--oversubscribe"]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    with sqlite3.connect(db) as con:
        keys = [k for (k,) in con.execute(
            "SELECT value FROM text_key_values WHERE key = 'key'").fetchall()]
    assert len(keys) == len(set(keys)) == len(frames)
    ok = sum(int(out.split(" ok,")[0].rsplit(" ", 1)[-1]) for out, _ in outputs)
    assert ok == len(frames)  # a row stored by the other run counts as skipped, not ok


def test_lock_held_by_another_writer_is_reported_not_waited_on(tmp_path):
    from filelock import FileLock

    src, db = tmp_path / "in.extxyz", tmp_path / "l.db"
    write_input(src, names=("H2",))
    (tmp_path / "l.db.lock").write_text("")  # ASE's file, left by a killed run: not read
    with FileLock(tmp_path / "l.db.flock"):  # another process would hold it the same way
        result = CliRunner(env={"MOLPRE_STORE_LOCK_TIMEOUT": "0.5"}).invoke(
            main, ["label", str(src), "-o", str(db), *HF, "--workers", "1", "--threads", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert "l.db.flock" in line and "another running process" in line and "re-run" in line


@pytest.mark.parametrize("command", ["label", "export"])
def test_corrupt_store_is_a_one_line_error(tmp_path, command):
    src, db = tmp_path / "in.extxyz", tmp_path / "l.db"
    write_input(src, names=("H2",))
    db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)  # a damaged file
    args = ([str(src), "-o", str(db), *HF, "--workers", "1", "--threads", "1"]
            if command == "label" else [str(db), "-o", str(tmp_path / "x.extxyz")])
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "corrupt or truncated" in result.output and "l.db" in result.output
    assert not (tmp_path / "x.extxyz").exists()
