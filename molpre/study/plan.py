"""A study's plan: the fixed test split, the nested budgets and one child per (arm, budget, seed).

Budgets are nested per seed by construction: :func:`molpre.data.splits.make_split` orders the
non-test molecules by ``default_rng(seed).permutation`` and takes the first N, so for one
seed the N=100 labels are the first 100 of the N=300 labels. Every arm and baseline at the
same (budget, seed) sees the same labels, which is what makes the differences paired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from molpre.data.datasets import LabeledData
from molpre.data.splits import (
    SplitError,
    permutation_test_rows,
    read_ids,
    rows_matching,
    test_groups,
    whole_groups,
)
from molpre.study.config import StudyConfig
from molpre.train.finetune_config import FinetuneConfig

#: The suffix of a taught arm's name: ``scratch+taught``, ``enc:full+taught``.
TAUGHT = "+taught"


def scratch_of(arm: str) -> str:
    """The scratch arm ``arm`` is compared with: ``scratch``, or ``scratch+taught`` for a
    taught arm (the same path: taught too)."""
    return "scratch" + TAUGHT if arm.endswith(TAUGHT) else "scratch"


@dataclass(frozen=True)
class Child:
    """One child run: ``arm`` is ``scratch``, ``<encoder>:<mode>``, ``<encoder>:control-<mode>``,
    ``linear`` or ``krr``, or a neural arm + :data:`TAUGHT` (``taught``: trained on its labels
    plus a teacher's, molpre.study.teaching); ``mode`` the finetuning mode (None for baselines)."""

    arm: str
    budget: int
    seed: int
    mode: str | None = None
    encoder: str | None = None  # encoder name (None: scratch and baselines)
    control: bool = False
    taught: bool = False

    @property
    def base_arm(self) -> str:
        """The arm without :data:`TAUGHT`: the untaught arm a taught one is paired with."""
        return self.arm[:-len(TAUGHT)] if self.taught else self.arm

    @property
    def is_baseline(self) -> bool:
        return self.mode is None

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.arm, self.budget, self.seed)

    @property
    def run_name(self) -> str:
        """Short and readable in the runs table: ``scratch N100 s2``."""
        return f"{self.arm} N{self.budget} s{self.seed}"

    @property
    def slug(self) -> str:
        return f"{self.arm.replace(':', '-')}-N{self.budget}-s{self.seed}"


def arms(config: StudyConfig) -> list[Child]:
    """The arm templates (budget and seed 0): scratch, each encoder's modes and controls."""
    out = [Child("scratch", 0, 0, mode="scratch")] if config.scratch else []
    for enc in config.encoders:
        out += [Child(f"{enc.name}:{m}", 0, 0, mode=m, encoder=enc.name) for m in enc.modes]
        out += [Child(f"{enc.name}:control-{m}", 0, 0, mode=m, encoder=enc.name, control=True)
                for m in enc.control]
    return out


def runs_at(config: StudyConfig, encoder: str | None, budget: int) -> bool:
    """Whether the arms of ``encoder`` (None: scratch) run at ``budget``."""
    spec = next((e for e in config.encoders if e.name == encoder), None)
    return spec is None or spec.budgets is None or budget in spec.budgets


def taught_arms(config: StudyConfig, budget: int) -> list[Child]:
    """The taught copies (``<arm>+taught``) of the arms ``config.teach`` names at ``budget``."""
    t = config.teach
    if not t.enabled or (t.budgets is not None and budget not in t.budgets):
        return []
    return [replace(a, arm=a.arm + TAUGHT, taught=True) for a in arms(config)
            if (t.arms is None or a.arm in t.arms) and runs_at(config, a.encoder, budget)]


def plan(config: StudyConfig) -> list[Child]:
    """Every child of the study, baselines first, small budgets first, taught arms after
    the arms they copy (which ``teach.untaught: false`` leaves out)."""
    children = []
    for budget in config.budgets:
        for seed in range(config.seeds.count(budget)):
            children += [Child(b, budget, seed) for b in config.baseline_arms()]
            taught = taught_arms(config, budget)
            skipped = set() if config.teach.untaught else {a.base_arm for a in taught}
            templates = [a for a in arms(config)
                         if runs_at(config, a.encoder, budget) and a.arm not in skipped]
            templates += taught
            children += [replace(a, budget=budget, seed=seed) for a in templates]
    return children


def _scaffold_test_rows(data: LabeledData, n_test: int, seed: int) -> np.ndarray:
    """Whole scaffold groups in seeded order until ``n_test`` rows; groups larger than half
    the test set stay in training (they would make the test set one chemotype)."""
    from molpre.study.contamination import keys_from_atoms

    scaffolds = [keys_from_atoms(a, i).scaffold or f"acyclic:{data.groups[i]}"
                 for i, a in enumerate(data.atoms)]
    by_scaffold: dict[str, list[int]] = {}
    for row, s in enumerate(scaffolds):
        by_scaffold.setdefault(s, []).append(row)
    names = sorted(by_scaffold)
    rows: list[int] = []
    for i in np.random.default_rng(seed).permutation(len(names)):
        group = by_scaffold[names[i]]
        if len(group) <= n_test // 2 and len(rows) + len(group) <= n_test:
            rows += group
    return np.sort(np.array(rows, dtype=np.int64))


def test_rows(config: StudyConfig, data: LabeledData) -> np.ndarray:
    """Row indices of the fixed test split (sorted): the rows the split kind draws, grown to
    whole molecule groups (every row of a molecule is on one side)."""
    s = config.split
    if s.kind == "permutation":
        rows = permutation_test_rows(len(data), s.test_size, s.seed)
    elif s.kind == "random":
        groups = sorted(set(data.groups))
        chosen = {groups[i] for i in np.random.default_rng(s.seed).permutation(len(groups))[:s.test_size]}
        rows = np.array([r for r, g in enumerate(data.groups) if g in chosen], dtype=np.int64)
    else:
        rows = _scaffold_test_rows(data, s.test_size, s.seed)
    return whole_groups(rows, data.groups)


def write_test_ids(config: StudyConfig, data: LabeledData, out: Path) -> Path:
    """Write the test split's molecule groups (InChIKey, else mol_id; one per line) to
    OUT/test_ids.txt and return the path. Children, audit and probes read the test rows back
    with :func:`read_test_rows`."""
    rows = test_rows(config, data)
    path = out / "test_ids.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{g}\n" for g in test_groups(rows, data.groups)))
    return path


def read_test_rows(test_ids: Path, data: LabeledData) -> np.ndarray:
    """The study's test rows (sorted): every row of each group in OUT/test_ids.txt (a file of
    mol_ids, as older studies wrote, gives the same rows)."""
    return np.asarray(rows_matching(read_ids(test_ids), data.mol_ids, data.groups), dtype=np.int64)


def check_budgets(config: StudyConfig, data: LabeledData, test: np.ndarray) -> None:
    """Raise SplitError before any child runs when a budget exceeds the labels outside the
    test split (each child would fail, and the study would end with nothing)."""
    pool = len(data) - len(test)
    too_large = [b for b in config.budgets if b > pool]
    if too_large:
        raise SplitError(
            f"budgets {too_large} exceed the {pool} labeled rows outside the test split "
            f"({len(data)} rows in {config.data}, {len(test)} in the test split); use budgets "
            f"up to {pool} (--set budgets=[...]) or a smaller split.test_size")


def val_fraction(config: StudyConfig, budget: int) -> float:
    """Validation share at ``budget``: at least ``train.val_min`` molecules (see TrainSpec)."""
    return min(0.5, max(config.train.val_fraction, config.train.val_min / budget))


def finetune_config(config: StudyConfig, child: Child, test_ids: Path, encoder_path: str | None,
                    out: Path, experiment_name: str) -> FinetuneConfig:
    """The FinetuneConfig of a neural child (threads=1: two children share two cores)."""
    spec = next((e for e in config.encoders if e.name == child.encoder), None)
    head = spec.head if spec is not None and encoder_path else "fresh"
    child_config = FinetuneConfig(
        data=config.data, target=config.target, unit=config.unit, forces_key=config.forces_key,
        test_ids=str(test_ids), budget=child.budget,
        mode="full" if child.mode == "scratch" and encoder_path else child.mode,
        encoder=encoder_path, head=head, seed=child.seed, threads=1,
        out=str(out / "children" / child.slug), run_name=child.run_name,
        experiment=experiment_name, log_model=False, progress=False,
    )
    train = config.train
    if spec is not None and spec.train:  # the encoder's own settings (checked at load)
        train = replace(train, **spec.train)
    return train.apply(child_config, val_fraction=val_fraction(config, child.budget))
