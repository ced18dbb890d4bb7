"""The configs of ``molpre predict``, ``embed`` and ``evaluate``, composed, never copied:
the Predictor's options (:class:`~molpre.inference.options.PredictorOptions`), where the
model runs (:class:`~molpre.inference.options.Placement`) and, for inputs read from a table,
its columns (:class:`molpre.chem.config.InputColumns`), plus each command's own fields. Each
is loaded by :func:`molpre.config.load_config`: defaults < ``--config`` (a ``predict:``,
``embed:`` or ``evaluate:`` section or top-level keys) < ``--set KEY=VALUE`` < flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from molpre.chem.config import InputColumns
from molpre.config import setting
from molpre.inference.options import Placement, PredictorOptions

MODEL_HELP = ("A finetune OUTDIR, its model/ dir, a model.ckpt, runs:/<id>/model, "
              "models:/<name>/<version> or models:/<name>@<alias>. No code from it runs.")


@dataclass(frozen=True)
class PredictConfig(PredictorOptions, Placement, InputColumns):
    """``molpre predict`` (and ``embed``, whose MODEL is an argument): the model, the output
    file, then the Predictor's options, its device and the input's columns."""

    model: str = setting("", metavar="SOURCE", help=MODEL_HELP)
    output: str = setting("", flags=("-o", "--output"), metavar="OUT", help=(
        "OUT.csv (predict) or OUT.parquet (embed): a CSV input's columns, then id, smiles, "
        "one column per target, status, error, n_conformers (embed: and embedding)."))


@dataclass(frozen=True)
class EvaluateConfig(PredictorOptions, Placement):
    """``molpre evaluate``: what to compare with (``target``/``key``/``unit``, default the
    model's finetune target), forces, the Predictor's options (batch_size; workers for a delta
    model's cheap level), MLflow logging and the output folder."""

    target: str | None = setting(None, help=(
        "Label to compare with (default: the model's finetune target); a key of DATA as "
        "energy=energy_ev[eV]."))
    key: str | None = setting(None, help="Read --target (default energy) from this info key of "
                                         "DATA, e.g. energy_ev (with --unit: its unit).")
    unit: str | None = setting(None, help="Unit of --target in DATA (default: the model's "
                                          "finetune unit).")
    forces_key: str | None = setting(None, help=(
        "atoms.arrays key of DATA's forces, e.g. forces_ev_a (default: the model's finetune "
        "forces_key, else forces)."))
    forces: bool | None = setting(None, help="Also score forces (default: when every labeled "
                                             "conformer has forces).")
    mlflow: bool = setting(False, help="Log the metrics and files as an MLflow run "
                                       "(MLFLOW_TRACKING_URI).")
    experiment: str = setting("molpre", help="MLflow experiment.")
    output: str = setting("", flags=("-o", "--output"), metavar="OUTDIR",
                          click_type=click.Path(),
                          help="OUTDIR: metrics.json, parity.png, predictions.csv.")


#: Options of ``molpre predict`` (every field via --set).
PREDICT_FIELDS = ("model", "n_conformers", "aggregation", "temperature", "batch_size",
                  "smiles_col", "id_col", "seed", "workers", "device", "chunk", "compile", "output")
#: Options of ``molpre embed``.
EMBED_FIELDS = ("n_conformers", "smiles_col", "id_col", "seed", "workers", "batch_size",
                "device", "output")
#: Options of ``molpre evaluate``.
EVALUATE_FIELDS = ("target", "key", "unit", "forces_key", "forces", "batch_size", "device",
                   "workers", "compile", "mlflow", "experiment", "output")
