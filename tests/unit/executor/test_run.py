"""The run core on a real process pool: results, task errors, deaths, re-runs and splits."""

import time

import pytest
from toy_tasks import Rec, square_or_die, whoami

from molpre.executor import Chunk, ProcessBackend, is_worker_death, run_chunks


def _run(chunks, die=(), raise_=(), max_attempts=2, window=4, **extra):
    results, lost = {}, {}
    backend = ProcessBackend(2)
    try:
        stats = run_chunks(
            backend, square_or_die, {"die": set(die), "raise": set(raise_), **extra.pop(
                "params", {})}, iter(chunks),
            lambda c, out: results.update(dict(out)),
            lambda c, why: lost.update({r.row: why for r in c.records}),
            max_attempts=max_attempts, window=window, **extra)
    finally:
        backend.close()
    return results, lost, stats


def _chunks(n, size):
    rows = list(range(1, n + 1))
    return [Chunk(i, [Rec(r) for r in rows[k:k + size]])
            for i, k in enumerate(range(0, n, size))]


def test_every_row_once_without_faults():
    results, lost, stats = _run(_chunks(10, 3))
    assert results == {r: r * r for r in range(1, 11)} and not lost and stats.deaths == 0


def test_a_task_error_is_an_error_row_for_its_chunk_only():
    results, lost, _ = _run(_chunks(6, 2), raise_={3})
    assert set(lost) == {3, 4} and "ValueError: bad row 3" in lost[3]
    assert set(results) == {1, 2, 5, 6}


def test_a_molecule_that_kills_its_worker_becomes_an_error_row_and_the_rest_completes():
    results, lost, stats = _run(_chunks(9, 3), die={5}, max_attempts=2)
    assert set(lost) == {5} and "worker process died" in lost[5]
    assert set(results) == set(range(1, 10)) - {5}
    assert stats.splits >= 1 and stats.lost == 1


def test_death_detection_by_type_name():
    from concurrent.futures.process import BrokenProcessPool

    assert is_worker_death(BrokenProcessPool("x"))
    assert not is_worker_death(ValueError("x"))


@pytest.mark.parametrize("size", [1, 4])
def test_split_singles_of_a_chunk_get_the_same_bounded_runs(size):
    results, lost, stats = _run(_chunks(4, size), die={2}, max_attempts=1)
    assert set(lost) == {2} and set(results) == {1, 3, 4}


def test_a_task_over_its_deadline_becomes_an_error_row_and_the_others_are_rerun():
    start = time.monotonic()
    results, lost, stats = _run(_chunks(6, 1), window=2, params={"hang": {2}},
                                deadline_s=1.5, limit_label=1.0)
    assert time.monotonic() - start < 60  # the hung task (3600 s) was killed
    assert set(lost) == {2} and lost[2].startswith("time limit exceeded (1 s; worker killed")
    assert results == {r: r * r for r in (1, 3, 4, 5, 6)}  # every other row exactly once
    assert stats.deaths == 0 and stats.reruns == 0  # the kill counts against no other chunk


def test_deadline_counts_from_the_task_start_not_its_submission():
    # 4 one-row chunks of 1 s each on 2 workers, all submitted at once: the last two start
    # ~1 s after submission and would be overdue at 1.8 s if the clock started at submission
    results, lost, _ = _run(_chunks(4, 1), window=4, deadline_s=1.8, params={"sleep": 1.0})
    assert not lost and set(results) == {1, 2, 3, 4}


def test_a_fatal_task_error_stops_the_run():
    with pytest.raises(LookupError, match="fatal row 3"):
        _run(_chunks(4, 1), params={"fatal": {3}}, fatal=(LookupError,))


def test_process_backend_runs_n_workers_with_their_thread_count():
    seen = []
    backend = ProcessBackend(2, threads=3)
    try:
        run_chunks(backend, whoami, {}, iter(_chunks(8, 1)), lambda c, out: seen.extend(out),
                   lambda c, why: None, window=2)
    finally:
        backend.close()
    assert sorted(r for r, _, _ in seen) == list(range(1, 9))
    assert len({pid for _, pid, _ in seen}) <= 2 and {t for _, _, t in seen} == {"3"}


def test_map_calls_retries_a_death_and_kills_a_call_past_its_deadline(tmp_path):
    from toy_tasks import flaky

    from molpre.executor import map_calls

    marker = str(tmp_path / "died")
    items = [("ok", 1, ""), ("die_once", 2, marker), ("hang", 3, ""), ("raise", 4, ""),
             ("ok", 5, "")]
    backend = ProcessBackend(2)
    start = time.monotonic()
    try:
        out = {i: (value, reason) for i, value, reason in
               map_calls(backend, flaky, items, max_attempts=2, window=2, deadline_s=4.0)}
    finally:
        backend.close()
    assert out[0] == (10, None) and out[4] == (50, None)
    assert out[1] == (20, None)  # its first worker died (the marker says so); the re-run returned
    assert (tmp_path / "died").is_file()
    assert out[2][0] is None and out[2][1].startswith("time limit exceeded (4 s")
    assert out[3][0] is None and "ValueError: bad item 4" in out[3][1]
    assert time.monotonic() - start < 60  # the hung call did not hold the run for its hour
