"""The finetuned model as an MLflow pyfunc ("models from code", no pickled objects).

It sits beside the Predictor it wraps (above molpre.models, which it used to live in:
model folders saved before name ``molpre.inference.pyfunc`` in their code file, an alias of
this module that ``molpre`` keeps importable).

The model directory holds the checkpoint (weights + rebuild config) as an artifact and the
tiny code file ``_pyfunc_code.py`` that names :class:`MolprePyfunc`. ``mlflow.pyfunc.load_model``
and ``mlflow models serve`` RUN that file: load a pyfunc only from a source you trust.
``molpre.Predictor.load`` never does: it reads the weights-only checkpoint artifact.

The artifact also holds a wheel of the molpre that wrote it, and ``requirements.txt`` points
at it (``artifacts/molpre-<version>-py3-none-any.whl``), so ``mlflow models serve`` can build
the model's environment although molpre is on no package index.

Input: a table with a SMILES column (``smiles``, ``SMILES``, ... any case, or named by the
``smiles_col`` param; optional ``id``, and ``xyz``: an (ext)xyz text of one conformer, used
instead of generated conformers); other columns are passed through. Output: the input's
columns, then the Predictor's (molpre.inference.predictor.COLUMNS, with None, JSON ``null``,
where the Predictor has NaN: an error row's values; a committee checkpoint, ``meta.committee``,
adds ``<column>_std`` doubles and ``ood`` boolean, ``ood_reason`` string). The signature
declares no input schema on purpose: MLflow would otherwise drop unnamed columns and reject
``SMILES``. A committee loads through the same checkpoint artifact as a single model.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from molpre.inference.options import PredictorOptions
from molpre.inference.wheel import build_wheel

CODE_PATH = Path(__file__).with_name("_pyfunc_code.py")
CHECKPOINT_ARTIFACT = "checkpoint"
WHEEL_ARTIFACT = "molpre_wheel"
ARTIFACT_PATH = "model"

_DEFAULTS = PredictorOptions()
SIGNATURE = ModelSignature(
    inputs=None,
    outputs=Schema([
        ColSpec("string", "id"), ColSpec("string", "smiles"), ColSpec("double", "energy_ev"),
        ColSpec("double", "energy_minus_atomref_ev"), ColSpec("string", "status"),
        ColSpec("string", "error"), ColSpec("long", "n_conformers"),
    ]),
    params=ParamSchema([  # defaults: the Predictor's (PredictorOptions)
        ParamSpec("n_conformers", "long", _DEFAULTS.n_conformers),
        ParamSpec("aggregation", "string", _DEFAULTS.aggregation),
        ParamSpec("temperature", "double", _DEFAULTS.temperature),
        ParamSpec("smiles_col", "string", ""),
    ]),
)


def signature_for(columns: list[str], committee: bool = False) -> ModelSignature:
    """SIGNATURE with one double output per target column (``energy_ev``, ``gap_ev``, ...;
    ``energy_minus_atomref_ev`` follows ``energy_ev``), as :attr:`Predictor.columns`; with
    ``committee``, ``<column>_std`` after each and ``ood``, ``ood_reason``."""
    from molpre.inference.predictor import value_columns

    columns = value_columns([c for c in columns if c != "energy_minus_atomref_ev"], committee)
    flags = [ColSpec("boolean", "ood"), ColSpec("string", "ood_reason")] if committee else []
    outputs = Schema([ColSpec("string", "id"), ColSpec("string", "smiles"),
                      *[ColSpec("double", c) for c in columns], *flags, ColSpec("string", "status"),
                      ColSpec("string", "error"), ColSpec("long", "n_conformers")])
    return ModelSignature(inputs=SIGNATURE.inputs, outputs=outputs, params=SIGNATURE.params)


def _signature(checkpoint: str | Path) -> ModelSignature:
    """The signature of the checkpoint's model (its ``meta.columns``, energy_ev by default;
    spreads and ``ood`` for a committee checkpoint)."""
    from molpre.models.checkpoint import COMMITTEE_FORMAT, read_checkpoint

    payload = read_checkpoint(checkpoint)
    columns = list(payload.get("meta", {}).get("columns", ["energy_ev"]))
    return signature_for(columns, committee=payload.get("format") == COMMITTEE_FORMAT)


class MolprePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the checkpoint artifact into a :class:`molpre.inference.predictor.Predictor`."""

    predictor: Any = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from molpre.inference.predictor import Predictor

        self.predictor = Predictor.from_checkpoint(context.artifacts[CHECKPOINT_ARTIFACT],
                                                   device="auto", progress=False)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """The Predictor's rows, with None (JSON ``null``) where the Predictor has NaN."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return with_nulls(self.predictor.predict_frame(frame, **(params or {})))


def with_nulls(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each float column that holds NaN (an error row's values and spreads)
    as an object column holding None there: ``mlflow models serve`` writes None as JSON
    ``null``, and NaN as a bare ``NaN``, which strict JSON parsers reject."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_float_dtype(column) and column.isna().any():
            out[name] = column.astype(object).where(column.notna(), None)
    return out


def save_pyfunc_model(checkpoint: str | Path, path: str | Path,
                      files: dict[str, str | Path] | None = None) -> Path:
    """Write a pyfunc model directory at ``path`` (which must not exist) for a checkpoint;
    ``files``: more artifacts by name (``{"split": "out/split.csv"}``: the model's
    train/val/test rows), kept in ``path/artifacts/``."""
    with _no_example_warning(), tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(path=str(path), python_model=str(CODE_PATH),
                                 signature=_signature(checkpoint),
                                 **_payload(checkpoint, tmp, files))
    return Path(path)


def log_pyfunc_model(checkpoint: str | Path, register_name: str | None = None,
                     files: dict[str, str | Path] | None = None) -> str:
    """Log the pyfunc (with ``files``, as :func:`save_pyfunc_model`) into the active run,
    optionally registered; returns ``runs:/<id>/model``."""
    with _no_example_warning():
        _log(checkpoint, register_name, files)
    return f"runs:/{mlflow.active_run().info.run_id}/{ARTIFACT_PATH}"


def _log(checkpoint: str | Path, register_name: str | None,
         files: dict[str, str | Path] | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.log_model(name=ARTIFACT_PATH, python_model=str(CODE_PATH),
                                signature=_signature(checkpoint), registered_model_name=register_name,
                                **_payload(checkpoint, tmp, files))


def _payload(checkpoint: str | Path, tmp: str,
             files: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """Artifacts (the checkpoint, a molpre wheel and ``files``) and requirements that install
    the wheel from inside the model folder (MLflow installs requirements with the folder as
    cwd)."""
    wheel = build_wheel(tmp)
    artifacts = {CHECKPOINT_ARTIFACT: str(checkpoint), WHEEL_ARTIFACT: str(wheel),
                 **{name: str(path) for name, path in (files or {}).items()}}
    return {"artifacts": artifacts, "pip_requirements": [f"artifacts/{wheel.name}"]}


@contextmanager
def _no_example_warning() -> Iterator[None]:
    """No input example on purpose (it would run a prediction while logging): no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example")
        yield
