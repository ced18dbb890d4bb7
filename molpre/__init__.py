"""molpre: measure how much self-supervised pretraining saves quantum-chemistry labels.

The public API is imported lazily so that ``import molpre`` stays fast (no torch,
PySCF or MLflow import until they are needed)::

    from molpre import Predictor
    pred = Predictor.load("runs:/<run_id>/model")
    df = pred.predict(["CCO", "c1ccccc1"])
"""

from __future__ import annotations

from molpre.interrupts import release_inherited_block

__version__ = "0.1.0"

release_inherited_block()  # a child of a molpre command gets Ctrl-C back (molpre.interrupts)

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):
    if name == "Predictor":
        from molpre.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'molpre' has no attribute {name!r}")
