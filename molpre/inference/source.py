"""Find molpre's weights-only checkpoint behind a model source, without running its code.

A source is a checkpoint file, a finetune output folder, a pyfunc model folder, ``runs:/...``,
``models:/name/1`` or ``models:/name@alias`` (or any artifact URI MLflow can download). The
artifact is downloaded (:func:`mlflow.artifacts.download_artifacts`), its ``MLmodel`` is read
as plain YAML to find the checkpoint artifact, and the checkpoint is read by
:func:`molpre.models.checkpoint.read_checkpoint` (``torch.load(weights_only=True)`` and a
format tag check; a single model or a committee, ``molpre.committee/1``). Nothing in the folder is imported, executed or unpickled: a tampered
``_pyfunc_code.py`` or ``python_model.pkl`` is never touched.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from molpre.errors import first_line
from molpre.models.checkpoint import CheckpointError, read_checkpoint

#: File names a molpre checkpoint may have inside a folder, in order of preference.
CHECKPOINT_NAMES = ("model.ckpt", "artifacts/model.ckpt", "model/artifacts/model.ckpt")


class ModelLoadError(ValueError):
    """A model source that does not exist or cannot be loaded (one clear message)."""


def read_model_source(source: str | Path) -> dict[str, Any]:
    """The checkpoint dict (see molpre.models.checkpoint) behind ``source``; ModelLoadError
    with one reason when there is none."""
    text = str(source)
    if "://" in text or text.startswith(("runs:/", "models:/")):
        with tempfile.TemporaryDirectory(prefix="molpre-model-") as tmp:
            local = _download(text, tmp)
            return _read(_checkpoint_in(local, text))
    path = Path(text)
    if not path.exists():
        raise ModelLoadError(f"model not found: {source}")
    return _read(path if path.is_file() else _checkpoint_in(path, text))


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_checkpoint(path)
    except CheckpointError as err:
        raise ModelLoadError(str(err)) from err


def _download(uri: str, dst: str) -> Path:
    import mlflow

    from molpre.config import ConfigError
    from molpre.tracking import check_tracking_uri

    try:  # in seconds, not after MLflow's minutes of retries against a dead server
        store = check_tracking_uri()  # molpre's store serves as tracking and registry store
    except ConfigError as err:
        raise ModelLoadError(f"cannot load model {uri}: {err}") from None
    try:
        location = _registry_location(uri, store) if uri.startswith("models:/") else uri
        local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=dst,
                                                    tracking_uri=store, registry_uri=store)
    except Exception as err:  # MlflowException, OSError, ...: say which model and why
        raise ModelLoadError(f"cannot load model {uri}: {first_line(err)}") from err
    return Path(local)


def _registry_location(uri: str, store: str) -> str:
    """Where the files of ``models:/name/<version>`` or ``models:/name@alias`` lie, asked of
    molpre's store (not of whatever registry MLflow's globals point at); other forms as given."""
    from mlflow import MlflowClient

    head, _, rest = uri[len("models:/"):].partition("/")
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    if "@" in head:
        name, alias = head.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
    elif rest.split("/")[0].isdigit():
        name, version = head, rest.split("/")[0]
        rest = rest.partition("/")[2]
    else:
        return uri  # a stage or a logged-model id: MLflow resolves it
    location = client.get_model_version_download_uri(name, version)
    return f"{location.rstrip('/')}/{rest}" if rest else location


def _checkpoint_in(folder: Path, label: str) -> Path:
    """The molpre checkpoint inside a downloaded or local model folder."""
    if folder.is_file():
        return folder
    for mlmodel in (folder / "MLmodel", folder / "model" / "MLmodel"):
        named = _checkpoint_named_by(mlmodel)
        if named is not None:
            return named
    for name in CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise ModelLoadError(
        f"{label} holds no molpre model checkpoint (looked for the MLmodel checkpoint artifact "
        f"and {', '.join(CHECKPOINT_NAMES)}); point --model at a `molpre finetune` output")


def _checkpoint_named_by(mlmodel: Path) -> Path | None:
    """The checkpoint artifact an MLmodel file names (read as data with yaml.safe_load)."""
    if not mlmodel.is_file():
        return None
    try:
        spec = yaml.safe_load(mlmodel.read_text())
        rel = spec["flavors"]["python_function"]["artifacts"]["checkpoint"]["path"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    path = (mlmodel.parent / str(rel)).resolve()
    if mlmodel.parent.resolve() not in path.parents or not path.is_file():
        return None  # an artifact path that escapes the model folder is not followed
    return path
