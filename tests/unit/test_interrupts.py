"""molpre.interrupts: while a command owns SIGINT it reaches the command's Python handler,
even during a blocking wait, and child processes that import molpre get SIGINT back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from molpre.interrupts import Terminated, own_interrupts, supported

pytestmark = pytest.mark.skipif(not supported(), reason="needs POSIX signal masks")
CODE = str(Path(__file__).resolve().parents[2])


def _signal_self_after(seconds: float, signum: int) -> None:
    threading.Timer(seconds, os.kill, (os.getpid(), signum)).start()


def test_sigint_interrupts_a_blocking_wait_and_runs_the_current_handler():
    with own_interrupts():
        _signal_self_after(0.3, signal.SIGINT)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            time.sleep(5)
        assert time.monotonic() - start < 2
        seen = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
        try:
            _signal_self_after(0.2, signal.SIGINT)
            time.sleep(0.8)
        finally:
            signal.signal(signal.SIGINT, previous)
        assert seen == [signal.SIGINT]  # e.g. pretrain's graceful stop
        _signal_self_after(0.2, signal.SIGTERM)
        with pytest.raises(Terminated):
            time.sleep(5)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_children_that_import_molpre_get_sigint_back():
    probe = "import signal{}; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    with own_interrupts():
        env = dict(os.environ, PYTHONPATH=CODE)  # with the owner's id, as a child inherits it
        plain, with_molpre = (subprocess.run([sys.executable, "-c", probe.format(extra)],
                                             env=env, capture_output=True, text=True).stdout
                              for extra in ("", ", molpre"))
    assert plain.strip() == "True" and with_molpre.strip() == "False"
