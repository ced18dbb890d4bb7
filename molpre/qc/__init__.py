"""PySCF labels: levels of theory, one compute entry point, content keys and the label job.

Light to import: PySCF loads only when a calculation runs.
"""

from __future__ import annotations

from molpre.qc.keys import content_key
from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import QCResult, compute
from molpre.qc.reference import fit_reference_energies
from molpre.qc.runner import LabelSummary, label_conformers

__all__ = ["LabelSummary", "LevelOfTheory", "QCResult", "compute", "content_key",
           "fit_reference_energies", "label_conformers"]
