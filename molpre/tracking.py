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
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from molpre.runtime import provenance

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "molpre"


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use: the argument, else ``MLFLOW_TRACKING_URI``, else the default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_tracking_uri(uri: str | None = None, timeout_s: float = 3.0) -> str:
    """The usable tracking URI (see :func:`tracking_uri`), or ConfigError saying why not.

    Checks, in well under 10 s and without importing MLflow: a SQLite file is writable (or can
    be created in a writable folder) and is not a folder; a ``file:`` store or plain path is
    refused as MLflow 3 refuses it (unless ``MLFLOW_ALLOW_FILE_STORE=true``, then its folder
    must be writable); an ``http(s)://`` server accepts a TCP connection within ``timeout_s``.
    Other schemes (postgresql, databricks, ...) are passed on unchecked. Call it before work.
    """
    from molpre.config import ConfigError

    uri = tracking_uri(uri)
    reason = _uri_problem(uri, timeout_s)
    if reason:
        raise ConfigError(f"MLflow tracking URI {uri!r}: {reason}")
    return uri


def check_model_source(source: str) -> None:
    """For a model held by MLflow (``runs:/``, ``models:/``, ``mlflow-artifacts:``): the
    tracking store must answer (:func:`check_tracking_uri`), checked before any heavy import;
    local paths pass. Raises ConfigError."""
    text = str(source)
    if text.startswith(("runs:/", "models:/", "mlflow-artifacts:")):
        check_tracking_uri()


def _uri_problem(uri: str, timeout_s: float) -> str | None:
    """Why ``uri`` cannot be used, or None."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        return _sqlite_problem(uri)
    if scheme in ("http", "https"):
        return _server_problem(parsed, timeout_s)
    if scheme in ("", "file") or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return _file_store_problem(parsed.path if scheme == "file" else uri)
    return None


def _writable_folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or its nearest existing parent), or None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"folder {existing} is not writable; choose another location"
    return None


def _sqlite_problem(uri: str) -> str | None:
    """SQLAlchemy's form: ``sqlite:///relative.db``, ``sqlite:////absolute.db``."""
    path = sqlite_path(uri)
    if path is None:
        return None
    if path.is_dir():
        return f"{path} is a folder, not a SQLite file; use e.g. sqlite:///{path}/mlflow.db"
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return f"SQLite file {path} is read-only; make it writable or use another file"
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return (f"folder {path.parent} of SQLite file {path} is read-only (SQLite needs "
                    f"it for its journal); use another location")
        return None
    return _writable_folder_problem(path.parent)


def _file_store_problem(path_text: str) -> str | None:
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        return ("MLflow 3 refuses the file store (set MLFLOW_ALLOW_FILE_STORE=true to use it "
                "anyway); use a SQLite store instead, e.g. sqlite:///mlflow.db")
    return _writable_folder_problem(Path(path_text))


def _server_problem(parsed: Any, timeout_s: float) -> str | None:
    import socket

    host = parsed.hostname
    if not host:
        return "no host in the address"
    try:
        port = parsed.port or (443 if parsed.scheme.lower() == "https" else 80)
    except ValueError:
        return "the port is not a number"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout_s:g} s; is `mlflow server` running?"
    except OSError as err:
        return (f"cannot connect to {host}:{port} ({err.strerror or err}); start `mlflow "
                f"server` there or point MLFLOW_TRACKING_URI at a reachable store")


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
    (:func:`artifact_location`), not in ``./mlruns`` of whatever directory a run started in;
    every molpre experiment is tagged as model training (:data:`KIND_TAG`).
    """
    import mlflow

    uri = check_tracking_uri(uri)
    mlflow.set_tracking_uri(uri)
    with store_setup_lock(uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            return mlflow.create_experiment(name, artifact_location=artifact_location(uri),
                                            tags={KIND_TAG: MODEL_TRAINING})
        if KIND_TAG not in experiment.tags:  # made before molpre set it
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, KIND_TAG,
                                                     MODEL_TRAINING)
        return experiment.experiment_id


#: Seconds a process waits for another one creating the same SQLite store's tables.
STORE_SETUP_TIMEOUT_S = 300.0


def store_setup_lock(uri: str) -> AbstractContextManager:
    """An operating-system lock beside a SQLite store (``STORE.setup.lock``) held while a
    process opens the store for the first time and gets or creates its experiment.

    MLflow creates a new store's tables by running its Alembic migrations, and several
    processes doing that at once on one new file fail ("Online migration expected to match
    one row", "table ... already exists") and can leave it half-migrated; two creating one
    experiment at once collide on its name. Other stores: no lock (their server serializes).
    """
    path = sqlite_path(uri)
    if path is None:
        return nullcontext()
    from filelock import FileLock

    return FileLock(f"{path}.setup.lock", timeout=STORE_SETUP_TIMEOUT_S)


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store (None for other stores and ``:memory:``)."""
    if not uri.startswith("sqlite:///"):
        return None
    text = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if text in ("", ":memory:") else Path(text).expanduser()


#: MLflow's record of what an experiment is: model training, not GenAI. (The 3.17 UI
#: follows its own workflow switch instead, which ``molpre ui`` sets in the URL it prints.)
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


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
