"""Labels: levels of theory (PySCF, GFN-xTB, MMFF), one compute entry point, content keys and
the label job.

Names are imported lazily (worker processes and ``molpre --help`` stay light; PySCF
itself loads only when a calculation runs).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LevelOfTheory": "molpre.qc.levels",
    "QCResult": "molpre.qc.pyscf",
    "compute": "molpre.qc.engines",
    "compute_many": "molpre.qc.engines",
    "parse_level": "molpre.qc.levels",
    "content_key": "molpre.qc.content_keys",
    "fit_reference_energies": "molpre.models.atomref",
    "LabelSummary": "molpre.qc.runner",
    "label_conformers": "molpre.qc.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'molpre.qc' has no attribute {name!r}")
