"""molpre.interrupts: while a command owns SIGINT it reaches the command's Python handler,
even during a blocking wait, and child processes that import molpre get SIGINT back.

Each check runs in a fresh interpreter: threads left by other tests (which do not block
SIGINT) would otherwise receive the signal instead of the forwarder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from molpre.interrupts import supported

pytestmark = pytest.mark.skipif(not supported(), reason="needs POSIX signal masks")
CODE = str(Path(__file__).resolve().parents[2])


def sigint_default() -> None:
    """In the child: SIGINT back to its default (the tests may run as a shell's background
    job, where SIGINT is ignored and Python would install no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(script: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], timeout=60,
                            env=dict(os.environ, PYTHONPATH=CODE), capture_output=True,
                            text=True, preexec_fn=sigint_default)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_sigint_interrupts_a_blocking_wait_and_runs_the_current_handler():
    out = run("""
        import os, signal, threading, time
        from molpre.interrupts import Terminated, own_interrupts

        def later(signum, seconds=0.3):
            threading.Timer(seconds, os.kill, (os.getpid(), signum)).start()

        with own_interrupts():
            later(signal.SIGINT)
            start = time.monotonic()
            try:
                time.sleep(5)
            except KeyboardInterrupt:
                print("interrupted-after", round(time.monotonic() - start, 1))
            seen = []
            signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
            later(signal.SIGINT)
            time.sleep(1.0)
            print("handler-ran", seen == [signal.SIGINT])
            later(signal.SIGTERM)
            try:
                time.sleep(5)
            except Terminated:
                print("terminated")
        print("released", signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    """)
    assert out[0] == "interrupted-after" and float(out[1]) < 2
    assert out[2:] == ["handler-ran", "True", "terminated", "released", "True"]


def test_children_that_import_molpre_get_sigint_back():
    out = run("""
        import os, signal, subprocess, sys
        from molpre.interrupts import own_interrupts

        probe = "import signal{}; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
        with own_interrupts():
            for extra in ("", ", molpre"):
                print(subprocess.run([sys.executable, "-c", probe.format(extra)],
                                     capture_output=True, text=True).stdout.strip())
    """)
    assert out == ["True", "False"]  # a plain child inherits the block; molpre releases it
