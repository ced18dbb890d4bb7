"""Pool workers never import the user's ``__main__`` (molpre.executor.processes): a script
without an ``if __name__ == "__main__":`` guard that runs tasks on a ProcessBackend runs once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import molpre
from molpre.executor.processes import MAIN_KEYS, forkserver_context, preparation_without_main

CODE = Path(molpre.__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

SCRIPT = """\
import os, sys
sys.path.insert(0, {here!r})
with open("runs.txt", "a") as f:
    f.write(f"{{os.getpid()}}\\n")
from toy_tasks import Rec, square_or_die
from molpre.executor import Chunk, ProcessBackend, run_chunks
results = {{}}
backend = ProcessBackend(2)
run_chunks(backend, square_or_die, {{"die": set(), "raise": set()}},
           iter([Chunk(i, [Rec(i + 1)]) for i in range(4)]),
           lambda c, out: results.update(dict(out)), lambda c, why: print("LOST", why))
backend.close()
print("RESULTS", sorted(results.items()))
"""


def test_workers_get_no_main_module_to_prepare():
    data = preparation_without_main("worker")
    assert not set(MAIN_KEYS) & set(data) and "sys_path" in data
    assert forkserver_context(["__main__", "json"]).get_start_method() == "forkserver"


def test_a_guardless_script_on_two_workers_runs_once(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT.format(here=str(HERE)))
    env = dict(os.environ, PYTHONPATH=str(CODE), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RESULTS [(1, 1), (2, 4), (3, 9), (4, 16)]" in done.stdout, done.stderr[-2000:]
    assert len((tmp_path / "runs.txt").read_text().split()) == 1
