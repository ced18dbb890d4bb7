"""Committee members on folds of their own (``committee_folds``, molpre.train.folds): the
folds' bookkeeping, and a real committee finetune whose member 0 is the plain committee's."""

import mlflow
import numpy as np
import pytest
import torch

from molpre.data.datasets import load_labeled
from molpre.data.splits import Split, make_split
from molpre.train.finetune import finetune
from molpre.train.finetune_config import ConfigError, FinetuneConfig
from molpre.train.folds import fold_splits


def _split_of(n_groups: int, conformers: int = 2, seed: int = 0):
    groups = [f"m{g}" for g in range(n_groups) for _ in range(conformers)]
    split = make_split(groups, seed=seed, test_fraction=0.2, val_fraction=0.1)
    return groups, split


def _groups(rows, groups):
    return {groups[int(r)] for r in rows}


@pytest.mark.parametrize("members", [1, 2, 3, 5])
def test_each_member_validates_on_its_own_fold_and_trains_on_the_rest(members):
    groups, split = _split_of(100)
    splits = fold_splits(split, groups, members, seed=3)
    budget = set(split.train.tolist()) | set(split.val.tolist())
    assert len(splits) == members and splits[0] is split
    for member in splits:
        assert np.array_equal(member.test, split.test)
        assert set(member.train.tolist()) | set(member.val.tolist()) == budget
        assert not set(member.train.tolist()) & set(member.val.tolist())
        assert len(_groups(member.val, groups)) == len(_groups(split.val, groups))
        # conformers of one molecule stay on one side
        assert not _groups(member.train, groups) & _groups(member.val, groups)
    vals = [_groups(m.val, groups) for m in splits]
    for j in range(members):
        for k in range(j + 1, members):
            assert not vals[j] & vals[k], (j, k)
    if members > 1:  # member 1 trains on member 0's validation molecules
        assert vals[0] <= _groups(splits[1].train, groups)


def test_folds_are_seeded():
    groups, split = _split_of(60)
    first = fold_splits(split, groups, 3, seed=1)
    assert all(np.array_equal(a.val, b.val) for a, b in zip(first, fold_splits(split, groups, 3, seed=1), strict=True))
    assert not np.array_equal(first[1].val, fold_splits(split, groups, 3, seed=2)[1].val)


def test_a_fold_never_takes_the_only_molecule_of_an_element():
    groups = [f"m{g}" for g in range(40)]
    elements = [[1, 6]] * 40
    elements[7] = [1, 6, 9]  # the only fluorine
    split = Split(train=np.array([i for i in range(40) if i != 0]), val=np.array([0]),
                  test=np.array([], dtype=np.int64))
    for seed in range(20):
        for member in fold_splits(split, groups, 4, seed=seed, elements=elements):
            assert 7 in member.train.tolist()


def test_more_folds_than_molecules_reuse_rather_than_fail():
    groups, split = _split_of(10, conformers=1)
    splits = fold_splits(split, groups, 12, seed=0)
    assert all(len(m.val) >= 1 and len(m.train) >= 1 for m in splits)


def test_committee_folds_needs_a_committee():
    with pytest.raises(ConfigError, match="ensemble >= 2"):
        FinetuneConfig(data="x.db", out="o", committee_folds=True)


@pytest.fixture(scope="module")
def qm9_small(shared_data):
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol")
    return data.subset(range(80))


def test_fold_committee_keeps_member_0_and_moves_the_others(qm9_small, tmp_path, monkeypatch):
    """Same seed and split: member 0 of the fold committee is the plain committee's member 0
    to the bit (float64, one thread); the other members trained on other rows, so they
    differ, and their head's per-element fit is their own training rows'."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = dict(data="qm9-subset", target="u0_atom", unit="kcal/mol", budget=50,
                    test_fraction=0.2, epochs=2, batch_size=8, lr=1e-2, patience=10, seed=0,
                    progress=False, threads=1, log_model=False, ensemble=3, dtype="float64")
    folded = finetune(FinetuneConfig(**settings, out=str(tmp_path / "folds"), committee_folds=True),
                      data=qm9_small)
    plain = finetune(FinetuneConfig(**settings, out=str(tmp_path / "plain")), data=qm9_small)
    (first, *rest), (plain_first, *plain_rest) = folded.model.members, plain.model.members
    for key, value in first.state_dict().items():
        assert torch.equal(value, plain_first.state_dict()[key]), key
    for member, other in zip(rest, plain_rest, strict=True):
        assert not torch.equal(member.heads["energy"].atomref.energies,
                               other.heads["energy"].atomref.energies)
    params = mlflow.get_run(folded.run_id).data.params
    assert int(params["split.member_1.val"]) == int(params["split.val"])
    assert int(params["split.member_2.train"]) == int(params["split.train"])
    assert "split.member_1.val" not in mlflow.get_run(plain.run_id).data.params
    assert np.isfinite(folded.metrics["test_mae_mev"])
