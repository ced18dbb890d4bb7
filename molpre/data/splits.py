"""Seeded train / validation / test splits that keep each molecule on one side.

Rows (conformers) are grouped by molecule (InChIKey, else ``mol_id``); a test set,
a training budget and a validation set are drawn as whole groups, so conformers of one
molecule never straddle train and test.

Protocol: the test set is fixed by ``split_seed`` (or given explicitly), the training
budget is drawn from the rest with ``seed``, and the validation set is carved out of
the budget (``val_fraction`` of its molecules), so train + val = budget labels.

The test set has one definition everywhere (finetune, a study's children, its contamination
audit and its embedding probes, ``molpre audit --eval-first``): :func:`rows_matching` takes
every row of each molecule group named (by a row's mol_id or by the group itself), so two
rows of one molecule never sit on both sides; :func:`test_groups` is what a test-ids file
holds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SplitError(ValueError):
    """A split that cannot be made (budget too large, test ids not found, ...)."""


@dataclass(frozen=True)
class Split:
    """Row indices of each part (sorted int arrays)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def read_ids(path: str | Path) -> list[str]:
    """Ids from a text file: one per line, blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"test-ids file not found: {path}")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line.split(",")[0].strip() for line in lines if line]


def permutation_test_rows(n_rows: int, n_test: int, split_seed: int = 0) -> np.ndarray:
    """The first ``n_test`` of ``numpy.random.default_rng(split_seed).permutation(n_rows)``.

    With ``split_seed=0``, ``n_rows=3000``, ``n_test=1000`` this is the shared QM9-sample
    protocol (the test set every benchmark in molpre uses).
    """
    if not 0 < n_test < n_rows:
        raise SplitError(f"test size {n_test} must be between 1 and {n_rows - 1}")
    return np.sort(np.random.default_rng(split_seed).permutation(n_rows)[:n_test])


def rows_matching(ids: Collection[str], mol_ids: Sequence[str], groups: Sequence[str]) -> list[int]:
    """The test rows named by ``ids`` (sorted): every row of each molecule group that holds a
    row whose mol_id is in ``ids`` or that is itself in ``ids``."""
    wanted = set(ids)
    hit = {g for m, g in zip(mol_ids, groups, strict=True) if m in wanted or g in wanted}
    rows = [i for i, g in enumerate(groups) if g in hit]
    if not rows:
        raise SplitError(f"none of the {len(wanted)} test ids matches a molecule in the data")
    return rows


def whole_groups(rows: Collection[int], groups: Sequence[str]) -> np.ndarray:
    """``rows`` grown to every row of their molecule groups (sorted)."""
    hit = {groups[int(r)] for r in rows}
    return np.array([i for i, g in enumerate(groups) if g in hit], dtype=np.int64)


def test_groups(rows: Collection[int], groups: Sequence[str]) -> list[str]:
    """The molecule groups of ``rows``, each once, in row order: a test-ids file's lines."""
    return list(dict.fromkeys(groups[int(r)] for r in sorted(rows)))


def _rows_by_group(groups: Sequence[str]) -> dict[str, list[int]]:
    by_group: dict[str, list[int]] = {}
    for row, group in enumerate(groups):
        by_group.setdefault(group, []).append(row)
    return by_group


def _take(order: Sequence[str], by_group: dict[str, list[int]], n_rows: int) -> list[str]:
    """Groups from ``order`` until at least ``n_rows`` rows are taken."""
    taken, count = [], 0
    for group in order:
        if count >= n_rows:
            break
        taken.append(group)
        count += len(by_group[group])
    return taken


def _rows(selected: Collection[str], by_group: dict[str, list[int]]) -> np.ndarray:
    return np.array(sorted(r for g in selected for r in by_group[g]), dtype=np.int64)


def make_split(
    groups: Sequence[str], *, seed: int = 0, split_seed: int = 0, test_fraction: float = 0.1,
    test_rows: Sequence[int] | None = None, budget: int | None = None, val_fraction: float = 0.1,
    elements: Sequence[Collection] | None = None,
) -> Split:
    """Split rows by molecule.

    Args:
        groups: molecule key of each row ``[n_rows]``.
        seed: drives the budget draw and the validation carve-out.
        split_seed: drives the test draw when ``test_rows`` is not given.
        test_fraction: share of molecules in the test set (ignored with ``test_rows``).
        test_rows: explicit test rows; every row of a molecule in them joins the test set.
        budget: training labels (rows) for train + val; default: the whole non-test pool.
        val_fraction: share of the budget's molecules used for validation (at least one).
        elements: the elements of each row ``[n_rows]`` (any hashable labels). When given, a
            molecule joins validation only if each of its elements stays in some training
            molecule (:func:`carve_validation`): a validation molecule with an element training
            never saw has no per-element reference energy, and its error (thousands of
            kcal/mol) would decide early stopping alone.
    """
    by_group = _rows_by_group(groups)
    names = sorted(by_group)
    if test_rows is not None:
        test = {groups[int(r)] for r in test_rows}
    else:
        if not 0.0 < test_fraction < 1.0:
            raise SplitError(f"test fraction must be in (0, 1), got {test_fraction}")
        order = np.random.default_rng(split_seed).permutation(len(names))
        n_test = max(1, int(round(test_fraction * len(names))))
        test = {names[i] for i in order[:n_test]}
    pool = [g for g in names if g not in test]
    pool_rows = sum(len(by_group[g]) for g in pool)
    if budget is not None and (budget < 2 or budget > pool_rows):
        raise SplitError(f"budget {budget} must be between 2 and the {pool_rows} non-test labels")
    rng = np.random.default_rng(seed)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    chosen = _take(pool, by_group, budget if budget is not None else pool_rows)
    if len(chosen) < 2:
        raise SplitError("need at least two training molecules (one for validation)")
    n_val = min(len(chosen) - 1, max(1, int(round(val_fraction * len(chosen)))))
    if elements is None:
        val = chosen[:n_val]
    else:
        kinds = {g: frozenset(e for r in by_group[g] for e in elements[r]) for g in chosen}
        val = carve_validation(chosen, kinds, n_val)
    in_val = set(val)
    train = [g for g in chosen if g not in in_val]
    return Split(train=_rows(train, by_group), val=_rows(val, by_group),
                 test=_rows(test, by_group))


def carve_validation(chosen: Sequence[str], kinds: dict[str, Collection], n_val: int) -> list[str]:
    """Up to ``n_val`` validation groups from ``chosen``, taken in order, skipping any whose
    removal would leave one of its elements (``kinds[group]``) in no training group.

    Where every element is common this is ``chosen[:n_val]``; a skipped group trains instead.
    Returns at least one group when ``chosen`` has two or more, falling back to the first.
    """
    from collections import Counter

    left = Counter(e for g in chosen for e in kinds[g])
    val: list[str] = []
    for group in chosen:
        if len(val) == n_val:
            break
        if all(left[e] > 1 for e in kinds[group]) and len(chosen) - len(val) > 1:
            val.append(group)
            left.subtract(kinds[group])
    return val or list(chosen[:1])


#: The columns of a model's split file (``split.csv``), in order.
SPLIT_COLUMNS = ("mol_id", "part", "row", "group", "smiles")


def split_table(split: Split, mol_ids: Sequence[str], groups: Sequence[str],
                smiles: Sequence[str] | None = None):
    """One row per labeled conformer that a split used, as a pandas DataFrame of
    :data:`SPLIT_COLUMNS`: ``part`` train, val or test; ``row`` its position among the
    labeled rows the finetune read (0-based, file order); ``group`` its molecule (InChIKey,
    else mol_id); ``smiles`` as the file gives it ('' when it does not). Sorted by row."""
    import pandas as pd

    parts = [(int(r), name) for name in ("train", "val", "test")
             for r in getattr(split, name)]
    parts.sort()
    rows = [r for r, _ in parts]
    return pd.DataFrame({
        "mol_id": [mol_ids[r] for r in rows], "part": [p for _, p in parts], "row": rows,
        "group": [groups[r] for r in rows],
        "smiles": [smiles[r] if smiles is not None else "" for r in rows]},
        columns=list(SPLIT_COLUMNS))


def write_split(path: str | Path, split: Split, mol_ids: Sequence[str], groups: Sequence[str],
                smiles: Sequence[str] | None = None) -> Path:
    """Write :func:`split_table` as CSV to ``path`` (replaced at the end); returns it."""
    from molpre.outputs import atomic_output

    with atomic_output(path, newline="") as handle:
        split_table(split, mol_ids, groups, smiles).to_csv(handle, index=False)
    return Path(path)


def read_split(path: str | Path, mol_ids: Sequence[str], groups: Sequence[str]) -> Split:
    """The split a split file (``split.csv`` of :func:`write_split`: ``mol_id`` and ``part``
    columns) names, on these rows: every row of a listed molecule joins its part; molecules
    the file does not list are left out. Raises SplitError for an unknown part, a molecule
    in two parts, an id not in the data, or an empty train, val or test part."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SplitError(f"split file not found: {path}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"mol_id", "part"} - set(table.columns)
    if missing:
        raise SplitError(f"{path}: needs columns mol_id and part (missing {sorted(missing)})")
    bad = sorted(set(table["part"]) - {"train", "val", "test"})
    if bad:
        raise SplitError(f"{path}: part must be train, val or test, got {bad[0]!r}")
    group_of = dict(zip(mol_ids, groups, strict=True))
    unknown = [m for m in table["mol_id"] if m not in group_of]
    if unknown:
        raise SplitError(f"{path}: {len(unknown)} mol_ids are not in the data "
                         f"(first: {unknown[0]!r})")
    part_of: dict[str, str] = {}
    for mol_id, part in zip(table["mol_id"], table["part"], strict=True):
        if part_of.setdefault(group_of[mol_id], part) != part:
            raise SplitError(f"{path}: molecule {group_of[mol_id]!r} is in two parts")
    rows = {name: np.array([i for i, g in enumerate(groups) if part_of.get(g) == name],
                           dtype=np.int64) for name in ("train", "val", "test")}
    empty = [name for name, r in rows.items() if len(r) == 0]
    if empty:
        raise SplitError(f"{path}: no {empty[0]} rows")
    return Split(**rows)
