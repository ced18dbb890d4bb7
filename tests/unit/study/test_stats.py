"""Statistics of a study on synthetic data with known answers."""

import numpy as np
import pytest

from molpre.study import stats


@pytest.mark.parametrize("n", [3, 5, 6, 20])
def test_bootstrap_interval_covers_true_mean_at_about_nominal_rate(n):
    rng = np.random.default_rng(1)
    trials = 400
    hits = 0
    for t in range(trials):
        x = rng.normal(10.0, 2.0, size=n)
        ci = stats.bootstrap_ci(x, n_boot=1000, seed=t)
        hits += ci.low <= 10.0 <= ci.high
    assert 0.90 <= hits / trials <= 0.99, hits / trials


def test_plain_percentile_would_undercover_at_five_seeds():
    # the expansion matters: the expanded quantiles are wider than 2.5/97.5
    lo, hi = stats._expanded_quantiles(5, 0.95)
    assert lo < 1.0 and hi > 99.0


def test_sign_flip_pvalue_exact():
    assert stats.sign_flip_pvalue([1, 1, 1, 1, 1]) == pytest.approx(2 / 32)
    assert stats.sign_flip_pvalue([0, 0, 0]) == 1.0
    assert stats.sign_flip_pvalue([1, -1, 1, -1]) == 1.0


def test_identical_arms_no_detectable_effect():
    a = {s: 5.0 + s * 0.3 for s in range(5)}
    diff = stats.paired_difference(a, dict(a))
    assert diff.interval.mean == 0 and diff.p_value == 1.0
    assert stats.verdict(diff, diff)[0] == stats.NO_EFFECT


def test_verdicts_gain_negative_and_control():
    scratch = {s: 10.0 + 0.5 * s for s in range(5)}
    better = {s: v - 2.0 + 0.1 * s for s, v in scratch.items()}
    worse = {s: v + 3.0 for s, v in scratch.items()}
    assert stats.verdict(stats.paired_difference(better, scratch))[0] == stats.GAIN
    assert stats.verdict(stats.paired_difference(worse, scratch))[0] == stats.NEGATIVE
    # as good as the control: a starting-weight effect, not a pretraining gain
    control = {s: v - 0.01 for s, v in better.items()}
    label, reason = stats.verdict(stats.paired_difference(better, scratch),
                                  stats.paired_difference(better, control))
    assert label == stats.NO_EFFECT and "control" in reason
    # no reference at this budget (a taught arm whose taught scratch was not run): said so
    label, reason = stats.verdict(None, taught=True)
    assert label == stats.NO_EFFECT and "the taught scratch not run at this budget" in reason


def test_power_law_fit_and_savings():
    rng = np.random.default_rng(0)
    budgets = [100, 300, 1000]
    scratch = {n: {s: 50 * n ** -0.5 * np.exp(rng.normal(0, 0.02)) for s in range(5)} for n in budgets}
    law = stats.fit_power_law(*stats._points(scratch))
    assert law.b == pytest.approx(0.5, abs=0.05)
    # the arm at N=100 reaches what scratch reaches at 400 labels
    arm = {n: {s: 50 * (4 * n) ** -0.5 for s in range(5)} for n in budgets}
    saving = stats.label_savings(scratch, arm, 100, n_boot=200)
    assert saving["labels"] == pytest.approx(400, rel=0.1)
    assert saving["low"] <= saving["labels"] <= saving["high"]
    assert 3.5 < saving["ratio"] < 4.5


def test_failure_flag_catches_a_run_that_stayed_at_the_baseline():
    from molpre.study.children import is_failed

    # the scratch seed 0 at N=100: validation picked epoch 5 (measured again here:
    # 20.88 kcal/mol against a per-element baseline of 21.19)
    assert is_failed(20.88, 21.19, 0.1)
    assert is_failed(float("nan"), 21.19, 0.1)
    assert not is_failed(9.49, 21.19, 0.1)
    assert not is_failed(9.0, None, 0.1)


def test_verdict_counts_failures_as_harm():
    from molpre.study.report import comparisons

    recs = [{"arm": a, "budget": 100, "seed": s, "test_mae": v, "failed": f}
            for s in range(5)
            for a, v, f in (("scratch", 9.0 + 0.1 * s, False), ("bad:full", float("nan"), True))]
    out = comparisons(recs)["bad:full"][100]
    assert out["verdict"] == "negative transfer" and "diverges" in out["reason"]


def test_an_encoder_can_share_another_encoders_control():
    from molpre.study.report import comparisons

    recs = [{"arm": a, "budget": 100, "seed": s, "test_mae": v + 0.01 * s, "failed": False}
            for s in range(5)
            for a, v in (("scratch", 5.0), ("hf:control-full", 5.0), ("hf:full", 6.0),
                         ("ssl:full", 4.0))]
    alone = comparisons(recs)["ssl:full"][100]
    assert alone["vs_control"] is None
    shared = comparisons(recs, {"ssl": "hf"})["ssl:full"][100]
    assert shared["vs_control"]["mean"] == pytest.approx(-1.0)
    assert shared["verdict"] == "gain"


@pytest.mark.parametrize("encoders, message", [
    ([{"name": "a", "path": "p", "control_of": "b"}], "must name another encoder"),
    ([{"name": "a", "path": "p", "control_of": "a"}], "must name another encoder"),
    ([{"name": "a", "path": "p", "seed": 1}, {"name": "b", "path": "q", "seed": 2, "control_of": "a"}],
     "seeds differ"),
])
def test_control_of_is_checked(encoders, message):
    from molpre.study.config import StudyConfigError, load_study_config

    with pytest.raises(StudyConfigError, match=message):
        load_study_config(raw={"data": "x", "encoders": encoders})


def test_no_saving_at_a_budget_where_every_scratch_seed_failed():
    from molpre.study.report import savings

    recs = [{"arm": arm, "budget": b, "seed": s, "test_mae": mae * (1 + 0.01 * s),
             "failed": arm == "scratch" and b == 50}
            for s in range(3) for b in (50, 100, 300)
            for arm, mae in (("scratch", 30.0 / b ** 0.5), ("x:full", 20.0 / b ** 0.5))]
    saved, _ = savings(recs)
    assert sorted(saved["x:full"]) == [100, 300]
    assert saved["x:full"][100]["ratio"] > 1
