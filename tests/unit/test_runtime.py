"""molpre.runtime: pool workers end with the command that started them."""

import os
import signal
import subprocess
import sys
import time

PARENT = """
import os, sys, time
parent = os.getpid()
pid = os.fork()
if pid == 0:  # the pool worker
    from molpre.runtime import exit_with_parent
    exit_with_parent(parent, every_s=0.1)
    time.sleep(60)  # a long task; only the watchdog can end it early
    os._exit(0)
print(pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie waiting for init is gone too
        return handle.read().split(")")[-1].split()[0] != "Z"


def test_a_worker_exits_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.send_signal(signal.SIGKILL)  # no chance to clean up, as with `kill -9`
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the orphaned worker kept running"


def test_progress_bars_follow_the_flag_else_whether_stderr_is_a_terminal(monkeypatch):
    import io

    from molpre.runtime import show_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert show_progress(None) is False and show_progress(True) is True
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert show_progress(None) is True and show_progress(False) is False


def test_finetune_and_pretrain_take_progress_flags():
    from click.testing import CliRunner

    from molpre.cli import main

    for command, key in (("finetune", "progress"), ("pretrain", "train.progress")):
        text = CliRunner().invoke(main, [command, "--help"]).output
        assert "--progress / --no-progress" in text, (command, key)
