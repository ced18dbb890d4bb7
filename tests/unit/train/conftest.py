"""Shared fixtures of the training tests."""

import pytest


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real MLflow SQLite store per test module (creating a store costs seconds); yields
    its URI, set as MLFLOW_TRACKING_URI while the module runs."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri
