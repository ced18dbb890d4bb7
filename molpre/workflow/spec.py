"""Job specs: typed dataclasses loaded from YAML, unknown keys rejected at any depth.

A job spec (``workflows/label.yaml``, ``predict.yaml``, ``corpus.yaml``) says *what* to compute;
a cluster profile (``workflows/slurm.yaml``, ``pbs.yaml``) says *where*. The classes are plain
dataclasses so that a unified config loader can build them later; :func:`load_job` is the small
loader used until then.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("label", "predict", "corpus")


class SpecError(ValueError):
    """A job spec or cluster profile that cannot be used (one clear message naming the key)."""


@dataclass(frozen=True)
class IntakeSpec:
    """What molecules are accepted (see :class:`molpre.chem.IntakeConfig`)."""

    elements: tuple[str, ...] = ("H", "C", "N", "O", "F", "S", "Cl")
    max_heavy_atoms: int = 100
    neutralize: bool = False
    smiles_col: str | None = None
    id_col: str | None = None


@dataclass(frozen=True)
class ConformerSpec:
    """Conformers per molecule and the RDKit seed."""

    n: int = 4
    seed: int = 0


@dataclass(frozen=True)
class LevelSpec:
    """A level of theory (fields of :class:`molpre.qc.levels.LevelOfTheory`)."""

    method: str = "HF"
    basis: str = "sto-3g"
    density_fit: bool = True
    auxbasis: str | None = None
    grid_level: int = 3
    cart: bool = False
    conv_tol: float = 1e-9
    max_cycle: int = 100
    time_limit_s: float | None = None
    max_atoms: int = 60


@dataclass(frozen=True)
class ModelSpec:
    """A model source for :meth:`molpre.predict.Predictor.load` (path, runs:/..., models:/...)."""

    source: str = ""
    aggregation: str = "lowest"
    batch_size: int = 64


@dataclass(frozen=True)
class JobSpec:
    """One batch job.

    kind: "label" (conformers -> PySCF labels into a store), "predict" (conformers -> a
    Predictor -> a table), "corpus" (conformers -> pretraining shards).
    chunk_size: molecules per task; max_attempts: runs of a chunk whose worker died before it
    is split into single molecules (a single molecule gets one more run, then an error row).
    threads: PySCF/BLAS threads per worker process.
    """

    kind: str
    chunk_size: int = 8
    max_attempts: int = 2
    threads: int = 1
    experiment: str = "molpre-jobs"
    intake: IntakeSpec = field(default_factory=IntakeSpec)
    conformers: ConformerSpec = field(default_factory=ConformerSpec)
    level: LevelSpec = field(default_factory=LevelSpec)
    forces: bool = False
    model: ModelSpec = field(default_factory=ModelSpec)
    shard_size: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("chunk_size", "max_attempts", "threads", "shard_size"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.conformers.n < 1:
            raise SpecError(f"conformers.n: must be >= 1, got {self.conformers.n}")
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


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _build(cls: type, data: Any, where: str) -> Any:
    """``cls(**data)`` with nested dataclasses built too; unknown keys raise SpecError."""
    if not isinstance(data, dict):
        raise SpecError(f"{where or 'spec'}: expected a mapping, got {type(data).__name__}")
    hints, known = _hints(cls), {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise SpecError(f"unknown key {name!r} (known here: {', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        values[name] = _convert(hints[name], value, path)
    try:
        return cls(**values)
    except TypeError as err:
        raise SpecError(f"{where or 'spec'}: {err}") from None


def _convert(tp: Any, value: Any, path: str) -> Any:
    if _is_dataclass_type(tp):
        return _build(tp, value or {}, path)
    origin = typing.get_origin(tp)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return tuple(str(v).strip() for v in items)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp) or (
            tp is int and isinstance(value, bool)):
        raise SpecError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such job spec file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of keys at the top level")
    return data


def job_from_dict(data: dict) -> JobSpec:
    """A :class:`JobSpec` from a plain dict (raises SpecError naming an unknown key)."""
    return _build(JobSpec, data, "")


def load_job(path: str | Path) -> JobSpec:
    """Read a job spec YAML file; errors name the file and the key."""
    try:
        return job_from_dict(_read_yaml(path))
    except SpecError as err:
        raise SpecError(f"{path}: {err}") if str(path) not in str(err) else err from None


def load_profile(path: str | Path) -> ClusterProfile:
    """Read a cluster profile YAML file (``workflows/slurm.yaml``, ``pbs.yaml``)."""
    try:
        return _build(ClusterProfile, _read_yaml(path), "")
    except SpecError as err:
        raise SpecError(f"{path}: {err}") if str(path) not in str(err) else err from None
