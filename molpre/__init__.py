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
#: folder when it loads one, and folders saved before a move import the old name
#: (``molpre.models.pyfunc``, ``molpre.pyfunc``); scripts may import the others.
MOVED = {
    "molpre.models.pyfunc": "molpre.inference.pyfunc",
    "molpre.pyfunc": "molpre.inference.pyfunc",
    "molpre.predict": "molpre.inference.predictor",
    "molpre.predict_inputs": "molpre.inference.inputs",
    "molpre.calculator": "molpre.inference.calculator",
    "molpre.evaluation": "molpre.inference.evaluation",
    "molpre.train.evaluate": "molpre.inference.metrics",
    "molpre.models.inference": "molpre.inference.batch",
    "molpre.models.source": "molpre.inference.source",
    "molpre.models.wheel": "molpre.inference.wheel",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old name of :data:`MOVED` as the new module itself (one module object
    under two names: same classes, same functions, patches seen by both)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the new module is imported): give it back its own ``__spec__``,
        which the import system set to the old name's."""
        module.__spec__ = self._specs.get(module.__name__, module.__spec__)

    _specs: dict = {}


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())  # before any finder that might know the old file


def __getattr__(name: str):
    if name == "Predictor":
        from molpre.inference import Predictor

        return Predictor
    raise AttributeError(f"module 'molpre' has no attribute {name!r}")
