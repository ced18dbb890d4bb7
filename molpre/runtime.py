"""Seeds and provenance: one seed drives everything; every run can say what it was."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

#: Packages whose versions every run records.
TRACKED_PACKAGES = (
    "molpre", "torch", "e3nn", "rdkit", "pyscf", "ase", "mlflow", "lightning", "dask", "numpy",
)


def show_progress(setting: bool | None) -> bool:
    """Whether to draw a progress bar: ``setting`` when given, else only when stderr is a
    terminal (a log redirected to a file gets no carriage-return bar lines)."""
    if setting is not None:
        return bool(setting)
    import sys

    return sys.stderr.isatty()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (RDKit takes the seed per call: see molpre.chem)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep chem usable on its own
        return
    torch.manual_seed(seed)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"absent"`` where not installed)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_sha(path: str | Path | None = None) -> str:
    """The git commit of the molpre source tree (``"unknown"`` outside a checkout).

    A ``+dirty`` suffix marks uncommitted changes, so a run never claims a clean commit.
    """
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (memory stays flat)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance() -> dict[str, str]:
    """Git SHA and package versions, as flat string tags for a run record."""
    tags = {"git_sha": git_sha()}
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags


def exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """In a pool worker: a daemon thread that ends this process once ``parent_pid`` (the
    command's process; not always the worker's direct parent, e.g. under forkserver) is
    gone, so killing a command never leaves its workers computing."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # the pid exists (reused by another user): keep going
                continue

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
