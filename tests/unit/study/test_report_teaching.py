"""Taught arms in the report: compared with the taught scratch and taught control (the same
path), and with their own untaught arm."""

from pytest import approx

from molpre.study.report import comparisons, markdown, teaching


def _records(values: dict[str, list[float]], budget: int = 300) -> list[dict]:
    return [{"arm": arm, "budget": budget, "seed": seed, "test_mae": mae, "failed": False,
             "failure_reason": "", "run_id": f"{arm}{seed}"}
            for arm, maes in values.items() for seed, mae in enumerate(maes)]


RECORDS = _records({
    "scratch": [5.0, 5.2, 4.9], "enc:full": [3.0, 3.1, 2.9], "enc:control-full": [5.1, 5.0, 5.2],
    "scratch+taught": [4.0, 4.1, 3.9], "enc:full+taught": [2.0, 2.2, 2.1],
    "enc:control-full+taught": [3.9, 4.0, 4.1]})


def test_a_taught_arm_is_compared_with_the_taught_scratch_and_control():
    c = comparisons(RECORDS)
    assert set(c) == {"enc:full", "enc:full+taught"}
    taught = c["enc:full+taught"][300]
    assert taught["vs_scratch"]["mean"] == approx((2.0 + 2.2 + 2.1 - 4.0 - 4.1 - 3.9) / 3)
    assert taught["vs_control"]["mean"] == approx((2.0 + 2.2 + 2.1 - 3.9 - 4.0 - 4.1) / 3)
    assert taught["verdict"] == "gain" and taught["reason"] == (
        "better than the taught scratch and than the taught random-init control")
    assert c["enc:full"][300]["reason"] == "better than scratch and than the random-init control"
    assert c["enc:full"][300]["vs_scratch"]["mean"] == approx((3.0 + 3.1 + 2.9 - 5.0 - 5.2 - 4.9) / 3)


def test_teaching_pairs_each_taught_arm_with_its_untaught_arm_by_seed():
    t = teaching(RECORDS)
    assert set(t) == {"scratch+taught", "enc:full+taught", "enc:control-full+taught"}
    assert abs(t["enc:full+taught"][300]["mean"] - (-0.9)) < 1e-12
    assert t["scratch+taught"][300]["seeds"] == [0, 1, 2]
    assert teaching(_records({"scratch": [5.0, 5.1], "enc:full": [3.0, 3.1]})) == {}


def test_the_markdown_has_the_teaching_table_only_with_taught_arms():
    import json

    from molpre.study.report import arm_table

    def summary(records):
        return json.loads(json.dumps({
            "name": "t", "target": "u0_atom", "unit": "kcal/mol", "parent_run_id": "p",
            "n_test": 10, "split": "permutation, seed 0", "budgets": [300],
            "table": arm_table(records), "comparisons": comparisons(records),
            "teaching": teaching(records), "savings": {}, "audit": {}, "failed": []}))

    assert "| enc:full+taught | 300 | -0.90" in markdown(summary(RECORDS))
    plain = [r for r in RECORDS if "+taught" not in r["arm"]]
    assert "Taught arms" not in markdown(summary(plain))


def test_the_answer_line_names_the_taught_scratch_for_a_taught_arm():
    from molpre.study.answer import answer_line

    line = answer_line({"budget": 300, "arm": "enc:full+taught", "verdict": "gain",
                        "savings": None, "best": None, "best_arm": None}, "kcal/mol")
    assert "enc:full+taught: gain vs scratch+taught;" in line
    plain = answer_line({"budget": 300, "arm": "enc:full", "verdict": "gain", "savings": None,
                         "best": None, "best_arm": None}, "kcal/mol")
    assert "enc:full: gain vs scratch;" in plain
