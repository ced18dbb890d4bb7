"""Job specs: typed dataclasses loaded from YAML, unknown keys rejected at any depth.

A job spec (``workflows/label.yaml``, ``predict.yaml``, ``corpus.yaml``) says *what* to compute;
a cluster profile (``workflows/slurm.yaml``, ``pbs.yaml``) says *where*. Both are read by the
unified config loader (:func:`molpre.config.load_config`), like every other command's config:
defaults < the YAML file < ``key=value`` overrides (``molpre submit --set level.basis=6-31g``).
Errors are :class:`SpecError` (a :class:`molpre.config.ConfigError`) naming the file and the
dotted key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from molpre.chem.config import InputConfig
from molpre.config import ConfigError, from_dict, load_config, override_of, setting
from molpre.inference.options import PredictorOptions
from molpre.qc.levels import LevelOfTheory

KINDS = ("label", "predict", "corpus", "fragments")


class SpecError(ConfigError):
    """A job spec or cluster profile that cannot be used (one clear message naming the key)."""


#: What molecules a job accepts and where a table keeps them: the intake's own config
#: (:class:`molpre.chem.config.InputConfig`, an IntakeConfig with the input's columns).
IntakeSpec = InputConfig


@dataclass(frozen=True)
class ConformerSpec:
    """Conformers per molecule and the RDKit seed."""

    n: int = 4
    seed: int = 0


@dataclass(frozen=True)
class PerturbSpec:
    """corpus: ``copies`` displaced copies of every conformer, each coordinate moved by
    ``N(0, sigma^2)`` Angstrom (seeded by the conformer seed and the input row)."""

    copies: int = 0
    sigma: float = 0.05


@dataclass(frozen=True)
class FragmentSpec:
    """fragments: pieces of ``min_heavy..max_heavy`` heavy atoms of only ``elements``
    (molpre.chem.fragments)."""

    min_heavy: int = 3
    max_heavy: int = 12
    elements: tuple[str, ...] = ("H", "C", "N", "O", "F")


@dataclass(frozen=True)
class ModelSource:
    """A model source for :meth:`molpre.inference.Predictor.load` (path, runs:/..., models:/...)."""

    source: str = ""


#: A predict job's model: its source and two of the Predictor's own options (declared and
#: checked in molpre.inference.options.PredictorOptions), ``aggregation`` and ``batch_size``.
ModelSpec = override_of(PredictorOptions, ("aggregation", "batch_size"), name="ModelSpec",
                        bases=(ModelSource,), doc=ModelSource.__doc__ + " Plus the Predictor's "
                        "aggregation and batch_size (molpre.inference.options).")


@dataclass(frozen=True)
class JobSpec:
    """One batch job.

    kind: "label" (conformers -> labels at ``level`` into a store), "predict" (conformers ->
    a Predictor -> a table), "corpus" (conformers, ``perturb.copies`` displaced copies of
    each, labels at ``level`` when ``label`` -> pretraining shards), "fragments" (small
    fragments of every input molecule -> one CSV of unique SMILES).
    chunk_size: molecules per task; max_attempts: runs of a chunk whose worker died before it
    is split into single molecules (a single molecule gets one more run, then an error row).
    threads: PySCF/BLAS threads per worker process.
    """

    kind: str = setting("", help="label, predict, corpus or fragments.")
    chunk_size: int = setting(8, help="Molecules per task.")
    max_attempts: int = setting(2, help="Runs of a chunk lost to a dead worker before it is split.")
    threads: int = setting(1, help="PySCF/BLAS threads per worker process.")
    experiment: str = setting("molpre-jobs", help="MLflow experiment of the job manifest.")
    intake: InputConfig = field(default_factory=InputConfig)
    conformers: ConformerSpec = field(default_factory=ConformerSpec)
    level: LevelOfTheory = field(default_factory=LevelOfTheory)
    forces: bool = setting(False, help="label: also compute forces (eV/Angstrom).")
    model: ModelSpec = field(default_factory=ModelSpec)
    shard_size: int = setting(1000, help="corpus: molecules per shard.")
    label: bool = setting(False, help="corpus: label every conformer and displaced copy at "
                                      "`level` (energies, forces with `forces`).")
    perturb: PerturbSpec = field(default_factory=PerturbSpec)
    fragments: FragmentSpec = field(default_factory=FragmentSpec)

    def __post_init__(self) -> None:
        if not self.kind:
            raise SpecError(f"kind: missing; give one of {', '.join(KINDS)}")
        if self.kind not in KINDS:
            raise SpecError(f"kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("chunk_size", "max_attempts", "threads", "shard_size"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.conformers.n < 1:
            raise SpecError(f"conformers.n: must be >= 1, got {self.conformers.n}")
        if self.perturb.copies < 0 or (self.perturb.copies and self.perturb.sigma <= 0):
            raise SpecError(f"perturb: need copies >= 0 and sigma > 0, got {self.perturb}")
        if not 1 <= self.fragments.min_heavy <= self.fragments.max_heavy:
            raise SpecError(f"fragments: need 1 <= min_heavy <= max_heavy, got {self.fragments}")
        if self.kind == "predict" and not self.model.source:
            raise SpecError("model.source: a predict job needs a model (path, runs:/..., models:/...)")

    def to_dict(self) -> dict:
        """Plain nested dict (for the manifest and the job id)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClusterProfile:
    """A dask-jobqueue cluster: ``kind`` slurm or pbs, per-job resources, and how many workers.

    cores: cores per batch job; processes: Dask worker processes per batch job (each gets
    cores // processes PySCF threads); workers: total worker processes to scale to.
    """

    kind: str
    cores: int = 16
    processes: int = 16
    memory: str = "64GB"
    walltime: str = "04:00:00"
    queue: str | None = None
    account: str | None = None
    workers: int = 100
    local_directory: str | None = None
    job_extra_directives: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("slurm", "pbs"):
            raise SpecError(f"kind: {self.kind!r} is not one of slurm, pbs")
        if self.cores < 1 or self.processes < 1 or self.cores % self.processes:
            raise SpecError(f"cores ({self.cores}) must be a multiple of processes ({self.processes})")


def job_from_dict(data: dict) -> JobSpec:
    """A :class:`JobSpec` from a plain dict (raises SpecError naming an unknown key)."""
    try:
        return from_dict(JobSpec, data)
    except ConfigError as err:
        raise _spec_error(err) from None


def _spec_error(err: ConfigError) -> SpecError:
    return err if isinstance(err, SpecError) else SpecError(str(err))


def _load(cls: type, path: str | Path, overrides: Iterable[str], what: str):
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such {what} file")
    try:
        return load_config(cls, path, list(overrides))
    except ConfigError as err:
        message = str(err)
        raise SpecError(message if str(path) in message else f"{path}: {message}") from None


def load_job(path: str | Path, overrides: Iterable[str] = ()) -> JobSpec:
    """Read a job spec YAML file, then ``key=value`` overrides (``level.basis=6-31g``);
    errors name the file and the dotted key."""
    return _load(JobSpec, path, overrides, "job spec")


def load_profile(path: str | Path, overrides: Iterable[str] = ()) -> ClusterProfile:
    """Read a cluster profile YAML file (``workflows/slurm.yaml``, ``pbs.yaml``)."""
    return _load(ClusterProfile, path, overrides, "cluster profile")
