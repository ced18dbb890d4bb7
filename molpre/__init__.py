"""molpre: measure how much self-supervised pretraining saves quantum-chemistry labels.

The public API is imported lazily so that ``import molpre`` stays fast (no torch,
PySCF or MLflow import until they are needed)::

    from molpre import Predictor
    pred = Predictor.load("runs:/<run_id>/model")
    df = pred.predict(["CCO", "c1ccccc1"])
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from molpre.interrupts import release_inherited_block

__version__ = "0.1.0"

release_inherited_block()  # a child of a molpre command gets Ctrl-C back (molpre.interrupts)

__all__ = ["Predictor", "__version__"]

#: Modules that moved, by their old names. MLflow runs the code file of a saved model
#: folder when it loads one, and folders saved before the move import the old name.
MOVED = {"molpre.models.pyfunc": "molpre.pyfunc"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old name of :data:`MOVED` as a module holding the new one's names."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        moved = importlib.import_module(MOVED[module.__name__])
        module.__dict__.update({k: v for k, v in vars(moved).items() if not k.startswith("__")})
        module.__doc__ = f"Moved to {moved.__name__} (this name is kept for saved models)."


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    if name == "Predictor":
        from molpre.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'molpre' has no attribute {name!r}")
