"""The report's label-savings section says why it is empty when it is."""

from molpre.study.report import _savings_lines, savings

CELL = {"mean": 5.0, "low": 4.0, "high": 6.0, "n": 3}


def _records(budgets):
    """Three seeds of scratch and one arm (half scratch's error) at each budget."""
    return [{"arm": arm, "budget": b, "seed": s, "failed": False,
             "test_mae": (2.0 if arm == "scratch" else 1.0) * 100 / b ** 0.5 * (1 + 0.01 * s)}
            for arm in ("scratch", "enc:full") for b in budgets for s in range(3)]


def _summary(records, table):
    return {"savings": savings(records)[0], "table": table}


def test_one_budget_says_the_power_law_needs_two():
    lines = _savings_lines(_summary(_records([100]), {"scratch": {100: CELL}, "enc:full": {100: CELL}}))
    assert "Not computed: scratch has results at 1 budget;" in lines[-1]
    assert "needs at least two" in lines[-1]


def test_two_budgets_give_the_table():
    recs = _records([100, 300])
    table = {"scratch": {100: CELL, 300: CELL}, "enc:full": {100: CELL, 300: CELL}}
    lines = _savings_lines(_summary(recs, table))
    assert lines[3] == "| arm | N | scratch labels | ratio |"
    assert any(line.startswith("| enc:full | 100 |") for line in lines)


def test_no_scratch_arm_is_named_as_the_reason():
    lines = _savings_lines({"savings": {}, "table": {"a": {100: CELL}, "b": {100: CELL}}})
    assert lines[-1] == "Not computed: the study has no scratch arm, whose learning curve defines them."
