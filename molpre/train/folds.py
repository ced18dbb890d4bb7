"""Committee members on folds of their own (``committee_folds``).

A committee (``ensemble: K``) normally trains every member on the same split: the same
training rows, the same validation rows, which no member ever learns from. With folds,
member 0 keeps the split and each member ``k >= 1`` validates on a share of the budget of its
own (as many molecules as the split's validation set, disjoint from every other member's,
drawn from the split's training molecules) and trains on everything else the budget holds,
the split's validation molecules included. So the committee learns from every label, and
its members differ in what they saw as well as in their seeds. The price: a molecule in
member 0's validation set was trained on by the other members, so the committee's own
validation figures are optimistic, and the out-of-domain threshold (calibrated on that set)
comes from spreads of molecules that one member did not see and the others did; each
member's own validation curve (``member_k.``) stays honest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from molpre.data.splits import Split, carve_validation


def _groups_in(rows: Sequence[int], groups: Sequence[str]) -> list[str]:
    """The distinct groups of ``rows``, in order of first appearance."""
    return list(dict.fromkeys(groups[int(r)] for r in rows))


def _rows_of(selected: Collection[str], rows: Sequence[int], groups: Sequence[str]) -> np.ndarray:
    chosen = set(selected)
    return np.array(sorted(int(r) for r in rows if groups[int(r)] in chosen), dtype=np.int64)


def fold_splits(split: Split, groups: Sequence[str], members: int, seed: int,
                elements: Sequence[Collection] | None = None) -> list[Split]:
    """Each member's split, ``[members]``; see the module docstring.

    Args:
        split: the run's split (member 0's); its train + val rows are the budget.
        groups: the molecule key of every row of the data ``[n_rows]``.
        members: committee size K (>= 1).
        seed: orders the training molecules before the folds are cut from them.
        elements: the elements of every row ``[n_rows]``; when given, a molecule joins a
            member's validation fold only if each of its elements stays in that member's
            training set (as :func:`molpre.data.splits.make_split` does).
    Returns:
        Splits with the same test rows; member k's val rows are disjoint from member j's
        (j != k), and its train rows are the rest of the budget.
    """
    budget = np.concatenate([split.train, split.val])
    pool = _groups_in(budget, groups)
    n_val = len(_groups_in(split.val, groups))
    trainable = _groups_in(split.train, groups)
    order = [trainable[i] for i in np.random.default_rng(seed).permutation(len(trainable))]
    kinds = {g: frozenset() for g in pool}
    if elements is not None:
        for r in budget:
            kinds[groups[int(r)]] = kinds[groups[int(r)]] | frozenset(elements[int(r)])
    used = set(_groups_in(split.val, groups))
    splits = [split]
    for _ in range(1, members):
        fresh = [g for g in order if g not in used]
        unused = set(fresh)
        candidates = fresh + [g for g in pool if g not in unused]
        val = carve_validation(candidates, kinds, n_val)
        used.update(val)
        splits.append(Split(train=_rows_of(set(pool) - set(val), budget, groups),
                            val=_rows_of(val, budget, groups), test=split.test))
    return splits
