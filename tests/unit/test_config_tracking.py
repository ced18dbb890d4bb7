"""The MLflow tracking URI is checked before any work: unusable ones fail fast with a reason."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.config import ConfigError
from molpre.tracking import check_tracking_uri, ensure_experiment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_without_privileges(uri: str) -> subprocess.CompletedProcess:
    """Run check_tracking_uri(uri) in a process that obeys file permissions (root drops its
    capabilities with setpriv, so a read-only file is read-only for it too)."""
    code = ("import sys\nfrom molpre.tracking import check_tracking_uri\n"
            "try:\n    check_tracking_uri(sys.argv[1])\nexcept ValueError as e:\n"
            "    print(e)\n    sys.exit(3)\n")
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be enforced")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--reuid=0"]
    return subprocess.run([*prefix, sys.executable, "-c", code, uri], capture_output=True,
                          text=True, timeout=60)


def test_http_address_where_nothing_listens_fails_in_seconds():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        check_tracking_uri(uri)
    assert time.perf_counter() - start < 10
    assert uri in str(err.value) and "cannot connect" in str(err.value)


def test_http_address_with_a_listener_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        assert check_tracking_uri(uri) == uri


def test_file_store_is_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in (f"file://{tmp_path}/mlruns", str(tmp_path / "mlruns")):
        with pytest.raises(ConfigError, match="refuses the file store"):
            check_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert check_tracking_uri(f"file://{tmp_path}/mlruns")


def test_sqlite_folder_is_refused_and_a_fresh_file_passes(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a SQLite file"):
        check_tracking_uri(f"sqlite:///{tmp_path}")
    uri = f"sqlite:///{tmp_path}/new/sub/mlflow.db"
    assert check_tracking_uri(uri) == uri
    assert ensure_experiment("checked", uri)  # the real store works where the check passes


def test_read_only_sqlite_file_and_folder_are_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"")
    os.chmod(db, 0o444)
    result = check_without_privileges(f"sqlite:///{db}")
    assert result.returncode == 3 and "is read-only" in result.stdout, result.stderr
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    result = check_without_privileges(f"sqlite:///{folder}/mlflow.db")
    assert result.returncode == 3 and "is not writable" in result.stdout, result.stderr
    result = check_without_privileges(f"sqlite:///{tmp_path}/rw/mlflow.db")
    assert result.returncode == 0, result.stdout + result.stderr


def test_finetune_stops_before_work_on_a_dead_server(tmp_path, monkeypatch):
    import lightning.pytorch  # noqa: F401  (the CLI imports it first; time only the command)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    data = tmp_path / "labels.extxyz"
    data.write_text("")
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["finetune", "--data", str(data), "-o", str(tmp_path / "o")])
    assert time.perf_counter() - start < 10
    # a dead server is not a usage error: one line, status 1 (molpre.cli.boundary)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "MLflow tracking URI 'http://127.0.0.1:" in result.output
    assert not (tmp_path / "o").exists()


def _ensure_in_a_process(uri: str) -> str:
    try:
        return ensure_experiment("raced", uri)
    except Exception as err:  # noqa: BLE001 - the parent test reports what failed
        return f"FAILED {type(err).__name__}: {str(err)[:200]}"


def test_processes_opening_one_new_sqlite_store_at_once_all_get_the_experiment(tmp_path):
    """Four processes creating one new store and experiment at once (MLflow's migrations race
    without the setup lock: every run of this failed at least one of them before the lock)."""
    import multiprocessing

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.map(_ensure_in_a_process, [uri] * 4)
    assert not [i for i in ids if i.startswith("FAILED")], ids
    assert len(set(ids)) == 1
    assert ensure_experiment("raced", uri) == ids[0]
