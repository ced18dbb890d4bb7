"""Plan and ledger: job ids, skipping recorded rows, intake rejects kept for the writer."""

import pytest

from molpre.workflow.ledger import Ledger, LedgerRow, ledger_path
from molpre.workflow.plan import job_id, make_plan
from molpre.workflow.spec import job_from_dict


def _spec(**extra):
    return job_from_dict({"kind": "corpus", "chunk_size": 2, **extra})


def test_job_id_depends_on_results_not_on_how_they_are_run():
    base = job_id(_spec(), "abc")
    assert job_id(_spec(chunk_size=7, max_attempts=5, threads=2), "abc") == base
    assert job_id(_spec(conformers={"n": 3}), "abc") != base
    assert job_id(_spec(), "abd") != base


def test_plan_skips_recorded_rows_and_keeps_rejects(tmp_path):
    smi = tmp_path / "m.smi"
    smi.write_text("C a\nCC b\nnot_smiles c\nCCC d\nCO e\nCN f\n")
    ledger = Ledger(ledger_path(tmp_path / "out"))
    plan = make_plan(smi, _spec(), ledger.done_rows)
    ledger.record(plan.job_id, [LedgerRow(1, "a", "C", "ok"), LedgerRow(5, "e", "CO", "ok")])
    plan = make_plan(smi, _spec(), ledger.done_rows)
    chunks = list(plan.chunks)
    assert [c.rows for c in chunks] == [[2, 4], [6]]
    assert plan.skipped == 2 and [r.row for r in plan.rejected] == [3]
    assert ledger.record(plan.job_id, [LedgerRow(1, "a", "C", "ok")]) == 0  # never twice
    assert ledger.counts(plan.job_id) == {"ok": 2}


def test_missing_input_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_plan(tmp_path / "none.smi", _spec(), lambda job: set())
