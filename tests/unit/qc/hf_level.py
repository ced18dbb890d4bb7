"""The level the qc tests compute at."""

from molpre.qc.levels import LevelOfTheory


def hf(**fields) -> LevelOfTheory:
    """HF/STO-3G (seconds per molecule); ``fields`` change others. molpre's default level,
    ``LevelOfTheory()``, is B3LYP/6-31G(2df,p): minutes per molecule."""
    return LevelOfTheory(**{"method": "HF", "basis": "sto-3g", **fields})
