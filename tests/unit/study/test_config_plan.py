"""Study config loading (unknown keys rejected at any depth) and the plan (nested budgets)."""

import pytest

from molpre.data.splits import make_split, permutation_test_rows
from molpre.study.config import StudyConfigError, load_study_config
from molpre.study.plan import plan, val_fraction


def test_pipeline_loads_and_overrides():
    c = load_study_config("pipelines/qm9_sample.yaml", ["budgets=[100,300]", "train.epochs=7"])
    assert c.budgets == [100, 300] and c.train.epochs == 7
    assert c.encoders[0].modes == ["full"] and c.seeds.count(300) == 5 and c.seeds.count(1000) == 3


@pytest.mark.parametrize("raw, word", [
    ({"data": "x", "trian": {}}, "trian"),
    ({"data": "x", "train": {"epoch": 3}}, "train"),
    ({"data": "x", "encoders": [{"name": "a", "path": "p", "mode": ["full"]}]}, "mode"),
    ({"data": "x", "split": {"kind": "stratified"}}, "split.kind"),
    ({"data": "x", "budgets": [300, 100]}, "budgets"),
])
def test_bad_configs_are_rejected_with_the_key_named(raw, word):
    with pytest.raises(StudyConfigError, match=word):
        load_study_config(raw=raw)


def test_plan_counts_and_small_budget_validation():
    c = load_study_config("pipelines/qm9_sample.yaml")
    children = plan(c)
    arms = {ch.arm for ch in children}
    assert arms == {"linear", "krr", "scratch", "pretrained:full", "pretrained:control-full"}
    assert len(children) == 5 * (2 * 5 + 2 * 3)
    assert val_fraction(c, 100) == 0.2 and val_fraction(c, 1000) == 0.1


def test_budgets_are_nested_per_seed_and_avoid_the_test_set():
    groups = [f"m{i}" for i in range(3000)]
    test = permutation_test_rows(3000, 1000, 0)
    for seed in range(3):
        small = make_split(groups, seed=seed, test_rows=test, budget=100, val_fraction=0.2)
        large = make_split(groups, seed=seed, test_rows=test, budget=300, val_fraction=0.1)
        s = set(small.train) | set(small.val)
        assert s <= set(large.train) | set(large.val)
        assert not s & set(test.tolist())
