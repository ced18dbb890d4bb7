"""Study config loading (unknown keys rejected at any depth) and the plan (nested budgets)."""

import pytest

from molpre.data.splits import make_split, permutation_test_rows
from molpre.study.config import StudyConfigError, load_study_config
from molpre.study.plan import plan, val_fraction


def test_pipeline_loads_and_overrides():
    c = load_study_config("pipelines/qm9_sample.yaml", ["budgets=[100,300]", "train.epochs=7"])
    assert c.budgets == [100, 300] and c.train.epochs == 7
    assert c.encoders[0].modes == ["full"] and c.seeds.count(300) == 5 and c.seeds.count(1000) == 3


@pytest.mark.parametrize("raw, message", [
    ({"data": "x", "trian": {}}, "unknown config key 'trian'; did you mean 'train'?"),
    ({"data": "x", "train": {"epoch": 3}}, "unknown config key 'train.epoch'; did you mean 'train.epochs'?"),
    ({"data": "x", "train": {"epochs": "ten"}}, "train.epochs: expected int, got 'ten'"),
    ({"data": "x", "encoders": [{"name": "a", "path": "p", "mode": ["full"]}]},
     "unknown config key 'encoders[0].mode'; did you mean 'encoders[0].modes'?"),
    ({"data": "x", "encoders": [{"name": "a", "path": "p", "modes": ["full", "ful"]}]},
     "encoders[0].modes[1]: expected one of ['probe', 'full', 'prior'], got 'ful'"),
    ({"data": "x", "encoders": [{"name": "a"}]}, "encoders[0]: path: give encoder 'a'"),
    ({"data": "x", "split": {"kind": "stratified"}}, "split.kind: expected one of"),
    ({"data": "x", "probes": {"max_trian": 5}}, "'probes.max_trian'; did you mean 'probes.max_train'?"),
    ({"data": "x", "budgets": [300, 100]}, "budgets: an increasing list"),
    ({"data": "x", "baselines": ["linear", "rf"]},
     "baselines[1]: expected one of ['linear', 'mean', 'krr']"),
    ({"data": "x", "target": "gap", "baselines": ["linear"]},
     "baselines: 'linear' does not fit target 'gap' (kind intensive); use mean or krr"),
    ({"data": "x", "target": "forces", "unit": None}, "target: forces is learned as the gradient"),
    ({}, "data: give a label file"),
    ({"data": "x", "teach": {"arms": ["scratch"]}}, "teach: give study"),
    ({"data": "x", "teach": {"study": "t", "arms": ["scrach"]}},
     "teach.arms: 'scrach' is not an arm of this study; one of ['scratch']"),
    ({"data": "x", "teach": {"study": "t", "budgets": [50]}}, "teach.budgets: [50] are not budgets"),
    ({"data": "x", "teach": {"study": "t"}, "forces_key": "forces"}, "teach: a study with forces"),
])
def test_bad_configs_are_rejected_with_the_key_named(raw, message):
    with pytest.raises(StudyConfigError) as err:
        load_study_config(raw=raw)
    assert message in str(err.value)


def test_file_errors_name_the_file_and_set_overrides_are_checked(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("study:\n  data: x\n  seeds: {smal: 3}\n")
    with pytest.raises(StudyConfigError, match=f"{path}: unknown config key 'seeds.smal'"):
        load_study_config(path)
    path.write_text("data: x\n")  # top-level keys (no section) load too
    assert load_study_config(path, ["seeds.small=2", "train.max_minutes=null"]).seeds.small == 2
    with pytest.raises(StudyConfigError, match="'krr.sigma'; did you mean 'krr.sigmas'"):
        load_study_config(path, ["krr.sigma=[1]"])
    config = load_study_config(path)
    with pytest.raises(AttributeError):
        config.workers = 3  # frozen


def test_study_cli_names_bad_keys_in_one_usage_line(tmp_path):
    from click.testing import CliRunner

    from molpre.cli import main

    path = tmp_path / "s.yaml"
    path.write_text("study:\n  data: x\n")
    result = CliRunner().invoke(main, ["study", "--config", str(path), "--set", "train.lrr=1"])
    assert result.exit_code == 2 and "unknown config key 'train.lrr'; did you mean 'train.lr'" in result.output
    result = CliRunner().invoke(main, ["study", "--workers", "0", "--config", str(path)])
    assert result.exit_code == 2 and "--workers" in result.output
    result = CliRunner().invoke(main, ["study"])
    assert result.exit_code == 2 and "data: give a label file" in result.output


def test_plan_counts_and_small_budget_validation():
    c = load_study_config("pipelines/qm9_sample.yaml")
    children = plan(c)
    arms = {ch.arm for ch in children}
    assert arms == {"linear", "krr", "scratch", "pretrained:full", "pretrained:control-full"}
    assert len(children) == 5 * (2 * 5 + 2 * 3)
    assert val_fraction(c, 100) == 0.2 and val_fraction(c, 1000) == 0.1


def test_taught_arms_copy_the_arms_they_name_at_their_budgets():
    import yaml

    raw = yaml.safe_load(open("pipelines/qm9_sample.yaml"))["study"]
    raw["teach"] = {"study": "elsewhere", "arms": ["scratch", "pretrained:full"], "budgets": [300]}
    c = load_study_config(raw=raw)
    children = plan(c)
    taught = [ch for ch in children if ch.taught]
    assert {ch.arm for ch in taught} == {"scratch+taught", "pretrained:full+taught"}
    assert {ch.budget for ch in taught} == {300} and len(taught) == 2 * c.seeds.count(300)
    full = next(ch for ch in taught if ch.arm == "pretrained:full+taught")
    assert full.base_arm == "pretrained:full" and full.encoder == "pretrained" and not full.control
    assert len(children) == 5 * (2 * 5 + 2 * 3) + len(taught)


def test_an_encoder_can_be_limited_to_some_budgets():
    import yaml

    raw = yaml.safe_load(open("pipelines/qm9_sample.yaml"))["study"]
    raw["encoders"][0]["budgets"] = [100]
    c = load_study_config(raw=raw)
    by_arm = {}
    for ch in plan(c):
        by_arm.setdefault(ch.arm, set()).add(ch.budget)
    assert by_arm["pretrained:full"] == by_arm["pretrained:control-full"] == {100}
    assert by_arm["scratch"] == by_arm["krr"] == set(c.budgets) and len(c.budgets) > 1


def test_budgets_are_nested_per_seed_and_avoid_the_test_set():
    groups = [f"m{i}" for i in range(3000)]
    test = permutation_test_rows(3000, 1000, 0)
    for seed in range(3):
        small = make_split(groups, seed=seed, test_rows=test, budget=100, val_fraction=0.2)
        large = make_split(groups, seed=seed, test_rows=test, budget=300, val_fraction=0.1)
        s = set(small.train) | set(small.val)
        assert s <= set(large.train) | set(large.val)
        assert not s & set(test.tolist())


def test_train_ensemble_makes_every_neural_child_a_committee(tmp_path):
    from molpre.study.plan import finetune_config

    c = load_study_config("pipelines/qm9_sample.yaml", ["train.ensemble=3"])
    child = next(ch for ch in plan(c) if ch.arm == "scratch")
    ids = tmp_path / "ids.txt"
    ids.write_text("m0\n")
    ft = finetune_config(c, child, ids, None, tmp_path, "exp")
    assert ft.ensemble == 3 and ft.max_minutes == c.train.max_minutes  # the cap is shared
    with pytest.raises(StudyConfigError, match="ensemble must be >= 1"):
        load_study_config("pipelines/qm9_sample.yaml", ["train.ensemble=0"])
