"""The study's answer in a few short fields (the runs table) and a description MLflow renders."""

import math

from molpre.study.answer import answer, description, parent_fields, rounded, text_table
from molpre.targets import get_target


def cell(mean, low, high, n=3, failed=0):
    return {"mean": mean, "low": low, "high": high, "n": n, "failed": failed}


SUMMARY = {
    "name": "qm9", "target": "u0_atom", "unit": "kcal/mol", "n_test": 1000,
    "split": "permutation, seed 0", "budgets": [100, 1000],
    "table": {"scratch": {"100": cell(9.71234, 9.1, 10.2), "1000": cell(4.4, 4.2, 4.61)},
              "qm9:full": {"100": cell(6.46, 6.1, 6.8), "1000": cell(3.53, 3.4, 3.7)},
              "qm9:control-full": {"100": cell(9.6, 9.0, 10.1), "1000": cell(4.3, 4.1, 4.5)},
              "bad:full": {"100": {"n": 0, "failed": 3}, "1000": {"n": 0, "failed": 3}},
              "krr": {"100": cell(8.0, 7.5, 8.4), "1000": cell(3.9123456, 3.7, 4.1)}},
    "comparisons": {"qm9:full": {"100": {"verdict": "gain", "reason": "better than both"},
                                 "1000": {"verdict": "gain", "reason": "better than both"}},
                    "bad:full": {"1000": {"verdict": "negative transfer", "reason": "diverges"}}},
    "savings": {"qm9:full": {"1000": {"ratio": 2.7912, "ratio_low": 2.3221, "ratio_high": 3.41,
                                      "labels": 2791, "low": 2322, "high": 3410}}},
    "failed": [{"arm": "bad:full"}] * 6,
}


def test_the_answer_reads_the_largest_budget():
    result = answer(SUMMARY)
    assert (result["budget"], result["best_arm"], result["arm"]) == (1000, "qm9:full", "qm9:full")
    assert result["verdict"] == "gain" and result["savings"]["ratio"] == 2.7912
    assert result["text"] == ("N=1000: qm9:full: gain vs scratch, saves 2.79x labels (2.32 to "
                              "3.41x); best arm qm9:full 3.53 (3.4 to 3.7) kcal/mol")


def test_the_parent_row_gets_short_rounded_fields():
    metrics, tags = parent_fields(SUMMARY, get_target("u0_atom", "kcal/mol"))
    assert metrics == {"mae_kcal": 3.53, "mae_kcal_lo": 3.4, "mae_kcal_up": 3.7, "savings_x": 2.79}
    assert tags["verdict"] == "gain (qm9:full)" and tags["best_arm"] == "qm9:full"
    assert rounded(17.698615) == 17.7 and rounded(767.48458) == 767.5
    assert math.isnan(rounded(float("nan")))


def test_without_encoders_the_answer_is_the_best_arm():
    plain = {**SUMMARY, "comparisons": {}, "savings": {}}
    result = answer(plain)
    assert result["arm"] is None and result["verdict"] == "no pretrained arm"
    assert result["text"] == "N=1000: best arm qm9:full 3.53 (3.4 to 3.7) kcal/mol"
    metrics, tags = parent_fields(plain, get_target("u0_atom", "kcal/mol"))
    assert "savings_x" not in metrics and tags["verdict"] == "no pretrained arm"


def test_the_description_renders_in_mlflows_markdown():
    text = description(SUMMARY)
    assert not any(line.startswith("#") for line in text.splitlines())  # headings overlap
    assert "[" not in text  # [a, b] renders as a link
    assert "**Answer.** N=1000: qm9:full: gain" in text and text.count("```") == 2
    table = text_table(SUMMARY)
    assert table[0].split() == ["arm", "N=100", "N=1000"]
    assert len({line.index("N=1000") for line in table[:1]}) == 1
    assert "- (3 failed)" in next(line for line in table if line.startswith("bad:full"))
    widths = {len(line) for line in table}
    assert max(widths) < 80  # one line per arm fits the description panel
