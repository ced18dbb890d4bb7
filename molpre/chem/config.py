"""Configs of molecule input: the intake plus the input's columns, and ``molpre conformers``.

:class:`InputConfig` is an :class:`~molpre.chem.molecules.IntakeConfig` (what is accepted;
its fields are not copied) and :class:`InputColumns` (where a table keeps its SMILES and
ids); batch jobs hold one (``intake:`` in a job spec) and :class:`ConformersConfig` is one
with the conformer options. ``molpre predict`` and ``embed`` take InputColumns too.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from molpre.chem.molecules import IntakeConfig
from molpre.config import setting


@dataclass(frozen=True)
class InputColumns:
    """Where a table keeps its molecules: ``smiles_col`` and ``id_col`` (None: found by
    name, ``smiles``/``SMILES``, ``id``, ...)."""

    smiles_col: str | None = setting(None, metavar="NAME", help=(
        "CSV column holding SMILES (default: found by name, any case, e.g. 'smiles')."))
    id_col: str | None = setting(None, metavar="NAME", help=(
        "CSV column holding molecule ids (default: found by name, e.g. 'id')."))


@dataclass(frozen=True)
class InputConfig(IntakeConfig, InputColumns):
    """The intake (IntakeConfig's fields) and a table's columns (InputColumns')."""

    def intake(self) -> IntakeConfig:
        """The intake part alone."""
        return IntakeConfig(elements=self.elements, max_heavy_atoms=self.max_heavy_atoms,
                            max_atoms=self.max_atoms, neutralize=self.neutralize,
                            allow_radicals=self.allow_radicals)


@dataclass(frozen=True)
class ConformersConfig(InputConfig):
    """``molpre conformers``: the input's intake and columns, then ``n`` ETKDGv3 conformers per
    molecule (seeded), on ``workers`` processes, into ``output`` (extxyz)."""

    output: str = setting("", flags=("-o", "--output"), metavar="OUT", help=(
        "Output extxyz file OUT (required); rejected rows go to OUT.errors.csv beside it. "
        "Both are replaced only when the run ends."))
    n: int = setting(4, flags=("--n",), click_type=click.IntRange(min=1), help=(
        "Conformers per molecule (RMS pruning may keep fewer; for XYZ/3D SDF input the given "
        "geometry is conformer 0)."))
    seed: int = setting(0, help="RDKit embedding seed (same seed, same conformers).")
    workers: int = setting(1, click_type=click.IntRange(min=0),
                           help="Worker processes, one thread each (0: one per CPU).")
    embed_timeout: int = setting(20, metavar="S", click_type=click.IntRange(min=1), help=(
        "Seconds per ETKDG embedding call; molecules that need longer become error rows "
        "(large, flexible molecules may need more)."))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 1 or self.workers < 0 or self.embed_timeout < 1:
            raise ValueError("n and embed_timeout must be >= 1, workers >= 0")


#: ConformersConfig fields that ``molpre conformers`` offers as options (any key via --set).
CLI_FIELDS = ("output", "n", "seed", "workers", "smiles_col", "id_col", "elements",
              "max_heavy_atoms", "max_atoms", "neutralize", "embed_timeout")
