"""The finetuned model as an MLflow pyfunc ("models from code", no pickled objects).

The model directory holds the checkpoint (weights + rebuild config) as an artifact and the
tiny code file ``_pyfunc_code.py`` that names :class:`MolprePyfunc`; loading runs that
file, so nothing depends on pickle or on ``torch.export`` (which cannot trace forces by
autograd). Input: a table with a ``smiles`` column (optional ``id``, and ``xyz``: an
(ext)xyz text of one conformer, used instead of generated conformers). Output: the
Predictor's table (id, smiles, energy_ev, status, error, n_conformers).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

CODE_PATH = Path(__file__).with_name("_pyfunc_code.py")
CHECKPOINT_ARTIFACT = "checkpoint"
ARTIFACT_PATH = "model"

SIGNATURE = ModelSignature(
    inputs=Schema([
        ColSpec("string", "smiles"),
        ColSpec("string", "id", required=False),
        ColSpec("string", "xyz", required=False),
    ]),
    outputs=Schema([
        ColSpec("string", "id"), ColSpec("string", "smiles"), ColSpec("double", "energy_ev"),
        ColSpec("string", "status"), ColSpec("string", "error"), ColSpec("long", "n_conformers"),
    ]),
    params=ParamSchema([
        ParamSpec("n_conformers", "long", 3),
        ParamSpec("aggregation", "string", "lowest"),
        ParamSpec("temperature", "double", 298.15),
    ]),
)


def signature_for(columns: list[str]) -> ModelSignature:
    """SIGNATURE with one double output per target column (``energy_ev``, ``gap_ev``, ...)."""
    outputs = Schema([ColSpec("string", "id"), ColSpec("string", "smiles"),
                      *[ColSpec("double", c) for c in columns], ColSpec("string", "status"),
                      ColSpec("string", "error"), ColSpec("long", "n_conformers")])
    return ModelSignature(inputs=SIGNATURE.inputs, outputs=outputs, params=SIGNATURE.params)


def _signature(checkpoint: str | Path) -> ModelSignature:
    """The signature of the checkpoint's model (its ``meta.columns``; energy_ev by default)."""
    from molpre.models.checkpoint import read_checkpoint

    return signature_for(list(read_checkpoint(checkpoint).get("meta", {}).get("columns", ["energy_ev"])))


class MolprePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the checkpoint artifact into a :class:`molpre.predict.Predictor`."""

    predictor: Any = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from molpre.predict import Predictor

        self.predictor = Predictor.from_checkpoint(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.predictor.predict_frame(frame, **(params or {}))


def save_pyfunc_model(checkpoint: str | Path, path: str | Path) -> Path:
    """Write a pyfunc model directory at ``path`` (which must not exist) for a checkpoint."""
    with _no_example_warning():
        mlflow.pyfunc.save_model(
            path=str(path), python_model=str(CODE_PATH),
            artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)}, signature=_signature(checkpoint),
            pip_requirements=_requirements(),
        )
    return Path(path)


def log_pyfunc_model(checkpoint: str | Path, register_name: str | None = None) -> str:
    """Log the pyfunc into the active run (optionally registered); returns ``runs:/<id>/model``."""
    with _no_example_warning():
        _log(checkpoint, register_name)
    return f"runs:/{mlflow.active_run().info.run_id}/{ARTIFACT_PATH}"


def _log(checkpoint: str | Path, register_name: str | None) -> None:
    mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH, python_model=str(CODE_PATH),
        artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)}, signature=_signature(checkpoint),
        registered_model_name=register_name, pip_requirements=_requirements(),
    )


@contextmanager
def _no_example_warning() -> Iterator[None]:
    """No input example on purpose (it would run a prediction while logging): no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example")
        yield


def _requirements() -> list[str]:
    from molpre import __version__

    return [f"molpre=={__version__}"]
