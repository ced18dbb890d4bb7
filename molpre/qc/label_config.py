"""LabelConfig: every option of ``molpre label``, a level of theory and how the run goes.

Loaded like every command's config (:func:`molpre.config.load_config`: defaults < a YAML
file, its ``label:`` section or top-level keys < ``--set level.basis=6-31g`` < flags). The
level is a :class:`~molpre.qc.levels.LevelOfTheory`, held whole (its defaults are the one
default level of labels, B3LYP/6-31G(2df,p)); its fields are the ``--method``, ``--basis``,
``--grid-level``, ... options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from molpre.config import setting
from molpre.qc.levels import LevelOfTheory


@dataclass(frozen=True)
class LabelConfig:
    """A labeling run: ``output`` (label store), ``level``, ``forces``, processes and threads,
    displaced copies (``perturb`` K per conformer, ``perturb_sigma`` Angstrom, seeded by
    ``perturb_seed``) and whether failed rows are recomputed."""

    output: str = setting("", flags=("-o", "--output"), metavar="DB", help=(
        "Label store: an ASE database path (SQLite, e.g. labels.db) or a postgresql:// URL. "
        "Created if absent; re-runs resume it."))
    level: LevelOfTheory = field(default_factory=LevelOfTheory)
    forces: bool = setting(False, help="Also compute forces (eV/Angstrom).")
    workers: int = setting(
        0, click_type=click.IntRange(min=0),
        help="Worker processes, each labeling one conformer at a time (0: one per core). For "
             "small molecules processes beat threads: on 20 QM9 molecules at HF/6-31G, 2 "
             "workers x 1 thread took 18 s, 1 worker x 2 threads 61 s.")
    threads: int | None = setting(None, click_type=click.IntRange(min=1),
                                  help="Threads per worker [default: cores // workers].")
    oversubscribe: bool = setting(False, help="Allow workers x threads > cores.")
    perturb: int = setting(
        0, metavar="K", click_type=click.IntRange(min=0),
        help="Also label K randomly displaced copies of each conformer (non-equilibrium "
             "geometries, so a model learns the surface near its minima; use with --forces).")
    perturb_sigma: float = setting(0.05, metavar="A",
                                   click_type=click.FloatRange(min=0, min_open=True),
                                   help="Gaussian displacement per coordinate, Angstrom.")
    perturb_seed: int = setting(0, help="Seed of the displacements (frame i's copies depend on "
                                        "(seed, i) only).")
    retry_failed: bool = setting(False, help="Recompute conformers whose stored row failed "
                                             "(default: skip them too).")

    def __post_init__(self) -> None:
        if self.workers < 0 or self.perturb < 0 or self.perturb_sigma <= 0:
            raise ValueError("workers and perturb must be >= 0, perturb_sigma > 0")


#: LabelConfig fields that ``molpre label`` offers as options (any key via --set).
CLI_FIELDS = ("output", "level.method", "level.basis", "forces", "workers", "threads",
              "oversubscribe", "level.grid_level", "level.density_fit", "level.auxbasis",
              "level.cart", "level.conv_tol", "level.max_cycle", "level.max_atoms",
              "level.time_limit_s", "perturb", "perturb_sigma", "perturb_seed", "retry_failed")
