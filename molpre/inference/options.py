"""How a Predictor predicts, declared once: :class:`PredictorOptions`.

``Predictor(..., **options)``, ``Predictor.configure(**options)``, the pyfunc's params and
the ``molpre predict`` / ``embed`` / ``evaluate`` options all come from these fields (their
defaults, checks and help text); :mod:`molpre.inference.config` composes the commands'
configs from them. Imports nothing heavy (the CLI reads it for ``--help``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import click

from molpre.config import setting

#: How a molecule's conformer values combine.
AGGREGATIONS = ("lowest", "boltzmann")
#: Default size limit (atoms, hydrogens included), the same as molpre.chem's intake.
MAX_ATOMS = 200


@dataclass(frozen=True)
class PredictorOptions:
    """``n_conformers`` per SMILES/2D input (ETKDGv3 + MMFF, ``seed``, on ``workers``
    processes; 0: one per core), combined by ``aggregation`` (``lowest`` or ``boltzmann`` at
    ``temperature`` K); ``batch_size`` conformers per model call; ``chunk`` molecules per
    output chunk (bounded memory); ``max_atoms`` the largest input; ``progress`` a tqdm bar;
    ``compile``: ``torch.compile`` the model (molpre.nn.compiled)."""

    n_conformers: int = setting(
        3, flags=("--conformers",), click_type=click.IntRange(min=1),
        help="Conformers per molecule (SMILES/2D inputs): at most this many; ETKDG prunes those "
             "within 0.5 A heavy-atom RMS of another, so a rigid molecule (benzene, ethanol) "
             "keeps 1. n_conformers reports how many were used.")
    aggregation: str = setting("lowest", click_type=click.Choice(AGGREGATIONS),
                               help="How conformer values combine.")
    temperature: float = setting(298.15, click_type=click.FloatRange(min=1),
                                 help="Kelvin, for --aggregation boltzmann.")
    batch_size: int = setting(64, click_type=click.IntRange(min=1),
                              help="Conformers per model batch.")
    seed: int = setting(0, help="Conformer seed.")
    workers: int = setting(
        1, click_type=click.IntRange(min=0),
        help="Conformer processes, also for a delta model's cheap-level PySCF (0: one per CPU "
             "core). They never re-run your script (no __main__ guard needed).")
    progress: bool = True
    max_atoms: int = setting(MAX_ATOMS, click_type=click.IntRange(min=1),
                             help="Larger inputs (hydrogens included) become error rows.")
    chunk: int = setting(256, click_type=click.IntRange(min=1),
                         help="Molecules per prediction chunk (bounded memory).")
    compile: bool = setting(False, help="torch.compile the model: about 2x the model's "
                            "conformers/s after 1-2 minutes of compiling on a CPU (large "
                            "screens). MOLPRE_COMPILE=1 also sets it.")

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        for name in ("n_conformers", "batch_size", "max_atoms", "chunk"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if int(self.workers) < 0 or float(self.temperature) <= 0:
            raise ValueError("workers must be >= 0 and temperature > 0")

    def predictor_options(self) -> dict[str, Any]:
        """The Predictor's options of this config (a command config holds more fields)."""
        return {name: getattr(self, name) for name in OPTIONS}


#: The Predictor's option names, in order.
OPTIONS = tuple(f.name for f in dataclasses.fields(PredictorOptions))


@dataclass(frozen=True)
class Placement:
    """Where the model runs."""

    device: str = setting("auto", help="Where the model runs: auto (a GPU if torch sees one), "
                                       "cpu, cuda, cuda:1.")
