"""Processes, as a user's shell runs them (real subprocesses; the point is the signals):
``molpre ui`` owns and ends its server's process group, the first Ctrl-C stops a command
within seconds even while RDKit embeds, and two submits to one output share the work."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import molpre as _molpre

ROOT = Path(__file__).resolve().parents[2]
CODE = Path(_molpre.__file__).resolve().parents[1]  # the molpre these tests import


def molpre(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``python -m molpre ARGS`` running the same molpre code as the tests."""
    full = dict(os.environ, PYTHONPATH=str(CODE), OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "molpre", *args], env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=sigint_default, **kwargs)


def sigint_default() -> None:
    """In the child: SIGINT back to its default, so Python installs KeyboardInterrupt even
    when the tests run where SIGINT is ignored (a shell's background job: ``cmd &``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Reader:
    """Collects a stream in a thread, so a test can wait for a line without blocking."""

    def __init__(self, stream) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for chunk in iter(lambda: stream.read(1), ""):
            self.text += chunk

    def wait_for(self, needle: str, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert proc.poll() is None, f"exited {proc.returncode} before {needle!r}: {self.text}"
            assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s: {self.text}"
            time.sleep(0.1)


def process_group(pgid: int) -> list[int]:
    """Live processes (not zombies) whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ui_then(signum: int, tmp_path: Path, expected: int, word: str, env=None) -> None:
    from molpre.cli.ui import free_port

    port = free_port()
    proc = molpre("ui", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
                  start_new_session=True, env=env)
    out, err = Reader(proc.stdout), Reader(proc.stderr)
    servers: list[int] = []
    try:
        out.wait_for("MLflow UI over", proc, timeout=180)
        servers[:] = children_of(proc.pid)
        (server,) = servers
        assert os.getpgid(server) == server != os.getpgid(proc.pid)  # its own group
        assert answers(port) and process_group(server)
        start = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == expected
        assert time.monotonic() - start < 15
        time.sleep(0.5)
        assert process_group(server) == [] and not answers(port)
        assert f"molpre: {word}" in err.text and "Traceback" not in err.text
    finally:
        for group in [proc.pid, *servers]:  # a server left behind must not outlive the test
            if process_group(group):
                os.killpg(group, signal.SIGKILL)
        proc.wait()


def test_ui_ends_its_server_and_workers_on_sigterm(tmp_path):
    _ui_then(signal.SIGTERM, tmp_path, 143, "terminated")


@pytest.mark.slow
def test_ui_ends_its_server_and_job_workers_on_ctrl_c(tmp_path):
    """With MLflow's job execution on (its huey workers: 10 processes in the group)."""
    _ui_then(signal.SIGINT, tmp_path, 130, "interrupted",
             env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})


def big_molecules(path: Path, count: int = 150) -> Path:
    """Large, flexible molecules of RDKit's NCI sample (embedding takes most of the time,
    so a Ctrl-C almost surely lands inside RDKit's own SIGINT handler)."""
    from rdkit import Chem

    from molpre.chem import corpus_path

    chosen = []
    for line in corpus_path().read_text().splitlines():
        mol = Chem.MolFromSmiles(line.split()[0]) if line.strip() else None
        if mol is not None and 25 <= mol.GetNumHeavyAtoms() <= 45 and \
                Chem.rdMolDescriptors.CalcNumRotatableBonds(mol) >= 6 and \
                {a.GetSymbol() for a in mol.GetAtoms()} <= {"C", "N", "O", "S", "Cl", "F"}:
            chosen.append(f"{Chem.MolToSmiles(mol)} m{len(chosen)}")
        if len(chosen) == count:
            break
    path.write_text("\n".join(chosen) + "\n")
    return path


@pytest.mark.parametrize("attempt", [1, 2])
def test_first_ctrl_c_stops_conformers_within_seconds(attempt, tmp_path):
    source = big_molecules(tmp_path / "big.smi")
    out = tmp_path / "confs.extxyz"
    proc = molpre("conformers", str(source), "-o", str(out), "--n", "8", "--seed",
                  str(attempt))
    err = Reader(proc.stderr)
    Reader(proc.stdout)
    try:
        err.wait_for("mol/s", proc, timeout=60)  # embedding is under way
        time.sleep(0.7 * attempt)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert code == 130 and seconds < 3, (code, seconds, err.text[-300:])
    assert "molpre: interrupted" in err.text and "Traceback" not in err.text
    assert not out.exists() and not list(tmp_path.glob(".confs*"))  # nothing half-written


def test_two_submits_to_one_output_share_the_work(tmp_path):
    source = tmp_path / "mols.smi"
    source.write_text("".join(f"{s} m{k}\n" for k, s in enumerate(
        ["CCO", "CCN", "CCC", "CCCO", "c1ccccc1", "CC(=O)O", "CCOC", "CNC"])))
    job = ROOT / "workflows" / "corpus.yaml"
    args = ["submit", str(job), "--input", str(source), "-o", str(tmp_path / "corpus"),
            "--workers", "1", "--no-track", "--set", "chunk_size=1", "--set", "conformers.n=1"]
    first, second = molpre(*args), molpre(*args)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    lines = sorted(o.strip().splitlines()[-1] for o, _ in outputs)
    computed = [line for line in lines if " 8 ok, 0 errors, 0 skipped" in line]
    skipped = [line for line in lines if " 0 ok, 0 errors, 8 skipped" in line]
    assert len(computed) == 1 and len(skipped) == 1, lines
    assert "waiting for it to finish" in "".join(e for _, e in outputs)
