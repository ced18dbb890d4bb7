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


def _with_comparison(scratch_n):
    from molpre.demo_answer import verdict_lines

    summary = _summary(3)
    summary["table"]["scratch"]["100"] = _cell(4.77, scratch_n) if scratch_n else {"n": 0}
    diff = {"mean": -1.0, "low": -2.0, "high": 0.5}
    summary["comparisons"] = {"pretrained:full": {"100": {"verdict": "no detectable effect",
                                                          "vs_scratch": diff, "vs_control": diff}}}
    summary["savings"] = {"pretrained:full": {"100": {"ratio": 1.84, "ratio_low": 0.93,
                                                      "ratio_high": 3.1}}}
    return verdict_lines(summary, "kcal/mol")


def test_a_saving_comes_with_its_interval():
    assert "saves 1.8x labels [0.9x, 3.1x]" in _with_comparison(3)[0]


def test_no_saving_where_no_scratch_seed_counts():
    line = _with_comparison(0)[0]
    assert "no detectable effect" in line and "saves" not in line
