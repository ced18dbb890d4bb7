"""`molpre submit` on a real LocalCluster (2 worker processes), HF/STO-3G, tiny molecules."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import Counter

import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.store import open_store
from molpre.executor.hooks import CRASH_ENV
from molpre.workflow import DaskBackend, ledger_path, load_job, local_cluster, run_job

#: A dozen rows: ten tiny molecules, an unparsable SMILES, an element outside the intake set;
#: "crash" (methanol) is planted to kill its worker (see molpre.workflow.tasks).
SMILES = ("smiles id\nC m1\nO m2\nN m3\nCC m4\nCO crash\nC=O m6\nC#N m7\nnot_a_smiles m8\n"
          "C#C m9\n[SiH4] m10\nCN m11\nFC m12\n")
SAFE = SMILES.replace(" crash\n", " m5\n")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes; the crash id is planted in their environment (kept set while
    the cluster lives: a worker restarted after a death inherits it from this process)."""
    saved = os.environ.get(CRASH_ENV)
    os.environ[CRASH_ENV] = "crash"
    client, cluster = local_cluster(workers=2)
    yield client
    client.close()
    cluster.close()
    if saved is None:
        os.environ.pop(CRASH_ENV)
    else:
        os.environ[CRASH_ENV] = saved


def _spec(tmp_path, extra=""):
    path = tmp_path / "label.yaml"
    path.write_text("kind: label\nchunk_size: 2\nmax_attempts: 1\nconformers: {n: 1}\n"
                    "level: {method: HF, basis: sto-3g}\n" + extra)
    return load_job(path)


def _ledger_rows(out):
    with sqlite3.connect(ledger_path(out)) as db:
        return db.execute("SELECT row, status, reason FROM rows ORDER BY row").fetchall()


def _store_keys(out):
    return Counter(row.key for row in open_store(out).select())


def test_label_job_records_every_row_exactly_once(cluster, tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text(SAFE)
    out = tmp_path / "labels.db"
    summary = run_job(_spec(tmp_path), smi, out, DaskBackend(cluster), track=False,
                      progress=False)
    rows = _ledger_rows(out)
    assert [r[0] for r in rows] == list(range(1, 13))
    status = {r[0]: r[1] for r in rows}
    assert status[8] == "error" and status[10] == "error"
    assert "Si" in rows[9][2] and "SMILES" in rows[7][2]
    assert sum(s == "ok" for s in status.values()) == 10 == summary.ok
    keys = _store_keys(out)
    assert len(keys) == 10 and set(keys.values()) == {1}
    again = run_job(_spec(tmp_path), smi, out, DaskBackend(cluster), track=False,
                    progress=False)
    assert again.skipped == 12 and again.computed == 0 and len(_store_keys(out)) == 10
    assert (tmp_path / "labels.db.rows.csv").read_text().count("\n") == 13


def test_sigkill_of_a_worker_mid_job_still_gives_every_row_once(cluster, tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text(SAFE)
    out = tmp_path / "labels.db"
    pids = cluster.run(os.getpid)
    killed = []

    def kill_one(summary):
        if not killed:
            victim = next(iter(pids.values()))
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    spec = _spec(tmp_path).__class__(**{**_spec(tmp_path).__dict__, "chunk_size": 1,
                                        "max_attempts": 2})
    summary = run_job(spec, smi, out, DaskBackend(cluster), track=False, progress=False,
                      window=2, on_chunk=kill_one)
    assert killed and killed[0] not in cluster.run(os.getpid).values()
    rows = _ledger_rows(out)
    assert [r[0] for r in rows] == list(range(1, 13))
    assert sum(r[1] == "ok" for r in rows) == 10 and summary.lost == 0
    keys = _store_keys(out)
    assert len(keys) == 10 and set(keys.values()) == {1}


@pytest.mark.slow
def test_a_molecule_that_crashes_its_worker_becomes_an_error_row(cluster, tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text(SMILES)
    out = tmp_path / "labels.db"
    summary = run_job(_spec(tmp_path), smi, out, DaskBackend(cluster), track=False,
                      progress=False)
    rows = {r[0]: r for r in _ledger_rows(out)}
    assert len(rows) == 12 and rows[5][1] == "error" and "worker process died" in rows[5][2]
    assert sum(r[1] == "ok" for r in rows.values()) == 9
    assert summary.lost == 1 and summary.splits >= 1
    assert len(_store_keys(out)) == 9


def test_cli_errors_are_one_clear_line(tmp_path):
    runner = CliRunner()
    job = tmp_path / "job.yaml"
    job.write_text("kind: label\nlevle: {}\n")
    smi = tmp_path / "m.smi"
    smi.write_text("C\n")
    result = runner.invoke(main, ["submit", str(job), "--input", str(smi)])
    assert result.exit_code == 2 and "unknown config key 'levle'" in result.output
    job.write_text("kind: label\n")
    for assignment, message in [("level.basiss=x", "unknown config key 'level.basiss'"),
                                ("kind=dock", "'dock' is not one of"),
                                ("chunk_size", "expected key=value")]:
        result = runner.invoke(main, ["submit", str(job), "--input", str(smi),
                                      "--set", assignment])
        assert result.exit_code == 2 and message in result.output, result.output
    result = runner.invoke(main, ["submit", str(job), "--input", str(tmp_path / "none.smi")])
    assert result.exit_code == 2 and "none.smi: no such file" in result.output
    result = runner.invoke(main, ["submit", str(job), "--input", str(smi),
                                  "--scheduler", "tcp://127.0.0.1:9", "-o",
                                  str(tmp_path / "l.db")])
    assert result.exit_code == 1 and "no Dask scheduler answered at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
