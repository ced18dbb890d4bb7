"""Test hooks that stand in for what kills or stalls a worker, for tasks to call per record.

A record whose id is listed in the environment variable ``MOLPRE_WORKFLOW_CRASH_IDS``
(comma-separated) makes its worker process exit at once (``os._exit``), standing in for a
segfault or an out-of-memory kill; one listed in ``MOLPRE_WORKFLOW_HANG_IDS`` makes its task
sleep for an hour, standing in for a calculation stuck where no time limit is checked.
ProcessBackend workers inherit the parent's ``MOLPRE_*`` variables at start.
"""

from __future__ import annotations

import os
import time

CRASH_ENV = "MOLPRE_WORKFLOW_CRASH_IDS"
HANG_ENV = "MOLPRE_WORKFLOW_HANG_IDS"


def maybe_crash(record_id: str) -> None:
    """Exit this process, or hang, when ``record_id`` is planted in the environment."""
    if record_id in os.environ.get(CRASH_ENV, "").split(",") and os.environ.get(CRASH_ENV):
        os._exit(13)
    if record_id in os.environ.get(HANG_ENV, "").split(",") and os.environ.get(HANG_ENV):
        time.sleep(3600)
