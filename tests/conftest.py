"""Shared pytest fixtures: the reference data folder, a temporary MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``../shared/data`` beside the checkout, or ``$MOLPRE_SHARED_DATA`` (a worktree elsewhere).
SHARED_DATA = Path(os.environ.get("MOLPRE_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def pytest_configure(config) -> None:
    """Tests run on CPU: hide GPUs (``--accelerator auto`` then means CPU) unless
    MOLPRE_TEST_GPU=1. bench/gpu_smoke.py is the check that runs on a GPU."""
    if os.environ.get("MOLPRE_TEST_GPU") != "1":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A real, empty MLflow SQLite store in a temp directory, set as the tracking URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads():
    """Keep BLAS/OpenMP from oversubscribing the CI cores."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    yield


def _can_create_in(folder: Path) -> bool:
    probe = folder / ".molpre-probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def read_only_folder(tmp_path) -> Path:
    """A folder in which no file can be created: ``tmp_path/ro`` at mode 0555, or ``/sys``
    where the tests run as root (root ignores permissions); skips when there is none."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not _can_create_in(folder):
            yield folder
        elif Path("/sys").is_dir() and not _can_create_in(Path("/sys")):
            yield Path("/sys")
        else:
            pytest.skip("no read-only folder available")
    finally:
        folder.chmod(0o755)
