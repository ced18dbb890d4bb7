"""MLflow conventions in one place: where runs go and what every run records.

The tracking store is ``MLFLOW_TRACKING_URI`` when set, else a SQLite file
``mlflow.db`` in the working directory (MLflow 3 refuses its plain file store unless
``MLFLOW_ALLOW_FILE_STORE=true``). Every run logs its resolved config as params, the
git SHA and package versions as tags, and the hashes of the datasets it read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from molpre.runtime import provenance

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "molpre"


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use: the argument, else ``MLFLOW_TRACKING_URI``, else the default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested config into ``{"a.b.c": "value"}`` strings for ``log_params``."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            text = json.dumps(value, default=str) if not isinstance(value, str) else value
            flat[name] = text[:6000]  # MLflow's param value limit
    return flat


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite store (``sqlite:///x/mlflow.db`` -> ``x/mlartifacts``), so a
    store and its artifacts travel together; None (MLflow's default) for other stores."""
    from pathlib import Path

    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    return (db.parent / "mlartifacts").as_uri()


def ensure_experiment(name: str = DEFAULT_EXPERIMENT, uri: str | None = None) -> str:
    """Create (once) and return the experiment id; call before starting parallel workers.

    A new experiment in a SQLite store keeps its artifacts in the store's folder
    (:func:`artifact_location`), not in ``./mlruns`` of whatever directory a run started in.
    """
    import mlflow

    uri = tracking_uri(uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location(uri))


@contextmanager
def start_run(
    run_name: str,
    config: Mapping[str, Any],
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    dataset_hashes: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
    nested: bool = False,
) -> Iterator[Any]:
    """Start an MLflow run that records config, provenance and dataset hashes.

    Yields the active ``mlflow.ActiveRun``. The resolved config is also stored whole as
    the artifact ``config.json``, so a run can be rebuilt from its record.
    """
    import mlflow

    experiment_id = ensure_experiment(experiment, uri)
    with mlflow.start_run(run_name=run_name, experiment_id=experiment_id, nested=nested) as run:
        mlflow.log_params(flatten(config))
        all_tags = dict(provenance())
        all_tags.update({f"dataset.{k}": v for k, v in (dataset_hashes or {}).items()})
        all_tags.update(tags or {})
        mlflow.set_tags(all_tags)
        mlflow.log_dict(dict(config), "config.json")
        yield run
