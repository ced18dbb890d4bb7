"""Inference: a finetuned model answering for new molecules, in one package.

One public surface (imported lazily, so ``import molpre.inference`` stays light)::

    from molpre.inference import Predictor, MolpreCalculator, evaluate_model

    pred = Predictor.load("runs:/<run_id>/model")   # a folder, a .ckpt, models:/name@alias
    df = pred.predict(["CCO", "c1ccccc1O"])          # one row per input (COLUMNS)
    atoms.calc = pred.calculator()                   # ASE: energy eV, forces eV/Angstrom
    report = evaluate_model(pred, labeled_data, "eval/")   # metrics, parity plot, rows

Modules: ``predictor`` (Predictor: inputs -> conformers -> model -> rows), ``inputs``
(what predict accepts, the geometry checks), ``calculator`` (the ASE calculator),
``evaluation`` (a model scored on a labeled file), ``metrics`` (MAE/RMSE per target and
unit, baselines, parity plots), ``batch`` (batched model outputs per target), ``source``
(the weights-only checkpoint behind a path, ``runs:/`` or ``models:/`` URI), ``pyfunc`` (the
MLflow model flavour) and ``wheel`` (the molpre wheel shipped inside a model artifact).
The modules' old names (``molpre.predict``, ``molpre.pyfunc``, ``molpre.models.pyfunc``,
...) still import (molpre.MOVED): model folders saved before name them in their code file.
"""

from __future__ import annotations

import importlib

#: public name -> module of this package that defines it.
PUBLIC = {
    "Predictor": "predictor", "COLUMNS": "predictor", "AGGREGATIONS": "predictor",
    "ModelLoadError": "source", "read_model_source": "source",
    "MolpreCalculator": "calculator", "OutOfDomainWarning": "calculator",
    "Evaluation": "evaluation", "evaluate_model": "evaluation",
    "target_metrics": "metrics", "error_metrics": "metrics", "energy_metrics": "metrics",
    "parity_plot": "metrics",
    "predict_targets": "batch", "predict_energies": "batch",
    "MolprePyfunc": "pyfunc", "save_pyfunc_model": "pyfunc", "log_pyfunc_model": "pyfunc",
}

__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    if name in PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
