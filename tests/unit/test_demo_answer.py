"""The demo's table says when a cell rests on fewer seeds than the study ran."""

from molpre.demo_answer import table_lines


def _cell(mean, n):
    return {"mean": mean, "low": mean - 1, "high": mean + 1, "n": n}


def _summary(control_n):
    return {"budgets": [50, 100],
            "table": {"linear": {"50": _cell(10.7, 3), "100": _cell(10.7, 3)},
                      "pretrained:control-full": {"50": _cell(6.37, control_n),
                                                  "100": _cell(3.62, 3)},
                      "scratch": {"50": _cell(7.14, 3), "100": {"n": 0}}}}


def test_full_cells_have_no_marker_and_no_footnote():
    lines = table_lines(_summary(3))
    assert "n=" not in "\n".join(lines[1:3])
    assert lines[1].split()[:2] == ["50", "10.70"]
    summary = _summary(3)
    summary["table"]["scratch"]["100"] = _cell(4.77, 3)
    assert len(table_lines(summary)) == 3  # header + 2 budgets, no footnote


def test_short_and_empty_cells_are_marked_and_explained():
    lines = table_lines(_summary(2))
    assert "6.37 [5.37, 7.37] n=2" in lines[1]
    assert lines[2].rstrip().endswith("-")  # scratch at N=100: no seed counts
    assert "only K of 3 seeds count" in lines[-1]
