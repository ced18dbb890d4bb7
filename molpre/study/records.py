"""The study's MLflow record: the parent run, its children, and finding finished children.

One parent run per study (its id lives in OUT/study.json, so a rerun reopens it); one
child run per (arm, budget, seed), nested under the parent (tag ``mlflow.parentRunId``),
with params ``arm``, ``budget``, ``seed``, ``encoder`` and the tag ``study.done = 1`` written
last: a child without it was interrupted and is run again on resume.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DONE = "study.done"


def metric_name(*parts: Any) -> str:
    """A metric/tag name MLflow accepts: parts joined by '.', odd characters as '_'."""
    return ".".join(re.sub(r"[^\w\-./ ]", "_", str(p)) for p in parts)


def recorded_parent(out: Path, experiment_id: str) -> str | None:
    """The parent run id that OUT/study.json names when the store still holds it in
    ``experiment_id``; None before a study's first run or when the store lost it."""
    import mlflow

    record = out / "study.json"
    if not record.is_file():
        return None
    run_id = json.loads(record.read_text()).get("parent_run_id")
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except Exception:  # noqa: BLE001 - a store that lost the run: the study starts a new parent
        return None
    return run_id if run.info.experiment_id == experiment_id else None


def open_parent(out: Path, experiment_id: str, name: str, config: dict) -> str:
    """The parent run id: reopened from OUT/study.json when it still exists, else created."""
    import mlflow

    from molpre.runtime import provenance
    from molpre.tracking import flatten

    client = mlflow.MlflowClient()
    run_id = recorded_parent(out, experiment_id)
    if run_id:
        client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(experiment_id, run_name=f"study {name}",
                            tags={"stage": "study", "study.name": name, **provenance()})
    run_id = run.info.run_id
    params = flatten(config)
    for start in range(0, len(params), 90):
        chunk = dict(list(params.items())[start:start + 90])
        client.log_batch(run_id, params=[mlflow.entities.Param(k, v) for k, v in chunk.items()])
    client.log_dict(run_id, config, "study_config.json")
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps({"parent_run_id": run_id,
                                                "experiment_id": experiment_id}))
    return run_id


def finished_children(experiment_id: str, parent_id: str, spec) -> dict[tuple[str, int, int], dict]:
    """``{(arm, budget, seed): record}`` of the parent's children that finished (tag
    study.done), scored on ``spec`` (the study's TargetSpec)."""
    import mlflow

    runs = mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        max_results=5000)
    out = {}
    client = mlflow.MlflowClient()
    for run in runs:
        tags = run.data.tags
        if tags.get(DONE) != "1":  # interrupted: marked killed, its child runs again
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")
            continue
        record = record_of(run, spec)
        out[(record["arm"], record["budget"], record["seed"])] = record
    return out


#: Tags of a child run holding the study's budget and seed (a taught child's finetune logs
#: its label count, true plus taught, as the param ``budget``); older runs have only params.
BUDGET_TAG, SEED_TAG = "study.budget", "study.seed"


def budget_and_seed(run) -> tuple[int, int]:
    """The study's (budget, seed) of a child run: its tags, else its params."""
    tags, params = run.data.tags, run.data.params
    return (int(tags.get(BUDGET_TAG, params["budget"])), int(tags.get(SEED_TAG, params["seed"])))


def scores(spec, metrics: dict) -> dict:
    """A child's headline scores from its metrics: ``test_mae`` and ``baseline_test_mae``
    (None when absent) in the study's ``unit`` (the spec's headline unit: kcal/mol for
    energies, meV for the gap, Debye for the dipole) and the metric they come from."""
    unit, _ = spec.headline
    name = spec.metric_name("mae", "test_", unit)
    base = metrics.get(spec.metric_name("mae", "baseline_test_", unit))
    return {"test_mae": float(metrics.get(name, float("nan"))),
            "baseline_test_mae": None if base is None else float(base),
            "unit": unit, "metric": name}


def record_of(run, spec) -> dict:
    """The study's view of a finished child run."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    budget, seed = budget_and_seed(run)
    return {"arm": params["arm"], "budget": budget, "seed": seed,
            "run_id": run.info.run_id, **scores(spec, metrics),
            "failed": tags.get("failed") == "true", "failure_reason": tags.get("failure_reason", ""),
            "errors_file": tags.get("study.errors_file", ""),
            "seconds": metrics.get("wall_time_s"), **delta_fields(tags)}


def delta_fields(tags: dict) -> dict:
    """A delta child's cheap level and fitted scale (``{}`` for a plain child)."""
    if "delta.level" not in tags:
        return {}
    return {"delta_level": tags["delta.level"], "delta_scale": float(tags["delta.scale"])}


def headline(spec, arm: str, budget: int, seed: int, metrics: dict, encoder: str | None,
             failed: bool) -> str:
    """The run description: what the run is and what it scored (test MAE in every report
    unit of ``spec``, headline unit first)."""
    first = spec.headline[0]
    units = [first] + [u for u, _ in spec.report_units if u != first]
    maes = [f"{metrics.get(spec.metric_name('mae', 'test_', u), float('nan')):.4g} {u}"
            for u in units]
    text = (f"**{arm}**, {budget} labels, seed {seed}: test {spec.name} MAE {maes[0]}"
            + "".join(f" ({m})" for m in maes[1:])
            + f"; encoder: {encoder or 'none (trained from scratch)'}")
    if failed:
        text += (f". FAILED: not better than the {spec.kind.prior_description} baseline, "
                 "excluded from averages")
    return text


def log_split_inputs(source: str, target: str, train_ids: list[str], test_ids: list[str],
                     budget: int, seed: int) -> None:
    """Log the child's training and test molecules as MLflow dataset inputs (active run)."""
    import warnings

    import mlflow
    import pandas as pd

    for ids, context, label in ((train_ids, "training", f"train N={budget} seed={seed}"),
                                (test_ids, "testing", "test")):
        with warnings.catch_warnings():  # a file:// source fits two of MLflow's source types
            warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
            dataset = mlflow.data.from_pandas(pd.DataFrame({"mol_id": ids}),
                                              source=Path(source).resolve().as_uri(),
                                              name=f"{Path(source).name} {target} {label}")
        mlflow.log_input(dataset, context=context)


#: The share key of the runs view a study writes on its experiment (see :func:`share_runs_view`).
VIEW_KEY = "molpre-study"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def run_columns(spec) -> list[str]:
    """The runs table's columns, short names first: the rounded headline MAE (a child's own;
    the parent's best arm's mean), the parent's interval, label savings, verdict and best
    arm, then each child's arm, study budget and seed (tags: a taught child's param ``budget``
    is its label count, true plus taught), failed flag and encoder name (not its path)."""
    from molpre.study.answer import BEST_ARM, HIGH, LOW, SAVINGS, VERDICT, headline_metric

    name = headline_metric(spec)
    return [f"metrics.`{name}`", f"metrics.`{name}{LOW}`", f"metrics.`{name}{HIGH}`",
            f"metrics.`{SAVINGS}`", f"tags.`{VERDICT}`", f"tags.`{BEST_ARM}`",
            "params.`arm`", f"tags.`{BUDGET_TAG}`", f"tags.`{SEED_TAG}`", "tags.`failed`",
            "tags.`encoder_name`"]


def chart_filter(spec) -> str:
    """Charts the comparison view shows: the children's rounded test error, their validation
    error clipped at twice the baseline's (a diverged child would flatten every other line;
    molpre.train.task.CLIP_FACTOR) and their wall time (a regex on metric names; the
    parent's long-named summary metrics stay out)."""
    from molpre.study.answer import headline_metric
    from molpre.train.task import clipped_name

    names = [headline_metric(spec), clipped_name(spec.metric_name("mae", "val_")),
             "wall_time_s"]
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def share_runs_view(experiment_id: str, spec, parent_id: str | None = None) -> str:
    """Write the experiment's shared runs view (an MLflow UI "share view" state, experiment tag
    ``mlflow.sharedViewState.molpre-study``): the parent run first with its children folded
    under it, the columns of :func:`run_columns` (the study's answer on the parent's row),
    and charts of the children's errors only; ``parent_id``: the study's parent run, pinned
    to the top with its children shown. Without it MLflow's runs table shows no
    metric or param column and its comparison view opens on the parent's summary metrics in
    alphabetical order. Returns the share key (the runs page URL takes
    ``?viewStateShareKey=<key>``)."""
    import mlflow

    state = {"selectedColumns": run_columns(spec), "runsHiddenMode": "SHOW_ALL",
             "orderByKey": "attributes.start_time", "orderByAsc": False,
             "chartsSearchFilter": chart_filter(spec)}
    if parent_id:
        state.update(runsPinned=[parent_id], runsExpanded={parent_id: True})
    mlflow.MlflowClient().set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(state))
    return VIEW_KEY
