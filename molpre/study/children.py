"""Run one child of a study (in this process or a pool worker) and record it in MLflow.

A neural child is one ``molpre.train.finetune.finetune`` call; a baseline child is computed
here. Every child is scored on the study's target through its spec (molpre.targets): its
kind compares predictions with labels (a vector by magnitude), and the baselines are the
kind's prior (``linear``: the per-element fit; ``mean``: the training mean) and KRR on what
that prior leaves. The child run then gets the study's params and tags, its datasets as
MLflow inputs, its per-molecule absolute test errors (OUT/children/<slug>/test_errors.npy,
molpre units: eV for energies and the gap; NaN for a molecule with an element the child's
labels never showed, as its reported MAE skips it) and, last, the tag ``study.done`` (see
molpre.study.records). A neural child whose test MAE is not below
``(1 - train.fail_margin)`` x the prior baseline of its own labels is tagged
``failed=true`` and excluded from averages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from molpre.study.plan import Child

_DATA: dict[tuple, Any] = {}


def load_data(path: str, target: str, unit: str):
    """The labeled data, read once per process."""
    from molpre.data.datasets import load_labeled

    key = (str(Path(path).resolve()), target, unit)
    if key not in _DATA:
        _DATA[key] = load_labeled(path, target, unit)
    return _DATA[key]


def cheap_labels(data, paths: list[str]):
    """The cheap level of every row of a delta study's data (molpre.delta), read once per
    process."""
    from molpre.delta import cheap_labels as read

    key = ("delta", tuple(paths), data.sha256)
    if key not in _DATA:
        _DATA[key] = read(data, list(paths))
    return _DATA[key]


def child_data(job: dict, data) -> tuple[Any, dict]:
    """The data a child learns from, and tags describing it: the study's data, or for a
    delta study ``target - s * E_cheap`` with ``s`` fitted on this child's training labels
    (train + validation of its budget and seed) unless the study fixes it."""
    delta = job.get("delta")
    if not delta or not delta.get("data"):
        return data, {}
    cheap = cheap_labels(data, list(delta["data"]))
    fitted = _child_delta(job, data)
    tags = {"delta.level": cheap.level, "delta.scale": f"{fitted.scale:.6f}",
            "delta.data": cheap.source, "delta.sha256": cheap.sha256}
    return fitted.remove(data, cheap), tags


def _child_delta(job: dict, data):
    """The Delta of a delta study's child: ``s`` fitted on its own true training labels
    (train + validation of its budget and seed) unless the study fixes it; a taught child
    keeps this ``s`` (its teacher's labels do not move it)."""
    from molpre.delta import fit_delta

    delta = job["delta"]
    cheap = cheap_labels(data, list(delta["data"]))
    split = _split(job, data)
    return fit_delta(data, cheap, np.concatenate([split.train, split.val]), delta.get("scale"))


def _split(job: dict, data):
    from molpre.train.finetune import split_data
    from molpre.train.finetune_config import FinetuneConfig

    c = job["child"]
    cfg = FinetuneConfig(data=job["data"], target=job["target"], unit=job["unit"],
                         test_ids=job["test_ids"], budget=c["budget"], seed=c["seed"],
                         val_fraction=job["val_fraction"])
    return split_data(cfg, data)


def _finetune(job: dict, data, scored=None) -> tuple[str, dict, np.ndarray, dict]:
    """(run id, metrics, per-molecule absolute test errors in molpre units, tags) of a
    neural child; a taught child (``job["teach"]``) trains through molpre.study.teaching.

    In a delta study ``data`` is the study's own data and finetune applies the delta itself
    (same split, so the same fitted ``s``), so that the child's saved model carries the
    cheap level and adds ``s * E_cheap`` back when loaded by the Predictor; ``scored`` is
    the delta data its test errors are computed on (the model's raw output is the delta).
    """
    from molpre.data.graph import atoms_to_sample
    from molpre.inference import predict_targets
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    fields = dict(job["finetune"])
    delta = job.get("delta") or {}
    if scored is not None and delta.get("data"):
        fields.update(delta=",".join(delta["data"]), delta_scale=delta.get("scale"))
    scored = data if scored is None else scored
    if fields.get("compile"):  # a worker runs child after child: start from no graphs (the
        import torch._dynamo  # previous child's models are gone; Inductor's disk cache stays)

        torch._dynamo.reset()
    tags: dict = {}
    if job.get("teach"):
        from molpre.study.teaching import run_taught

        if delta.get("data"):  # the scale of the child's true labels, as ``scored`` has it
            fields["delta_scale"] = _child_delta(job, data).scale
        result, tags = run_taught(job, data, _split(job, data), fields)
    else:
        result = finetune(FinetuneConfig.from_dict(fields), data)
    split = _split(job, scored)
    test = scored.subset(split.test)
    cutoff = float(result.model.encoder.config.cutoff)
    samples = [atoms_to_sample(a, cutoff) for a in test.atoms]
    spec = study_spec(job)
    pred = predict_targets(result.model, samples)[spec.name]
    errors = np.abs(spec.errors(pred, test.labels[spec.name]))
    return (result.run_id, result.metrics,
            unsupported_as_nan(errors, test.atoms, result.model.elements), tags)


def unsupported_as_nan(errors: np.ndarray, atoms, elements) -> np.ndarray:
    """``errors`` [n_test] with NaN for each molecule holding an element outside ``elements``
    (the model never saw it in training): the rows the child's reported MAE skips
    (``test_n_unsupported``), so a per-molecule analysis of the errors file agrees with it."""
    from molpre.inference.inputs import known_mask

    seen = known_mask([a.numbers for a in atoms], elements)
    errors = np.array(errors, dtype=float)
    errors[~seen] = np.nan
    return errors


def study_spec(job: dict):
    """The TargetSpec a child is scored on (the study's target, in its stored unit)."""
    from molpre.targets import get_target

    return get_target(job["target"], job["unit"])


def _baseline_run(job: dict, errors: np.ndarray, extra: dict) -> tuple[str, dict]:
    """Create the MLflow run of a baseline child and log its test metrics."""
    import mlflow

    from molpre.inference import error_metrics
    from molpre.tracking import flatten

    c = job["child"]
    known = np.isfinite(errors)  # NaN: an element the budget's labels never show (skipped)
    metrics = error_metrics(study_spec(job), errors[known], "test_")
    metrics.update({"test_n": int(known.sum()), "test_n_unsupported": int((~known).sum())})
    metrics.update({f"{k}": v for k, v in extra.items() if isinstance(v, float)})
    with mlflow.start_run(run_name=Child(**c).run_name, experiment_id=job["experiment_id"]) as run:
        mlflow.log_params(flatten({"data": job["data"], "target": job["target"],
                                   "budget": c["budget"], "seed": c["seed"],
                                   "encoder": "null", "mode": c["arm"]}))
        mlflow.log_metrics(metrics)
    return run.info.run_id, metrics


def fit_prior(job: dict, arm: str):
    """``(numbers, labels) -> Prior`` of a baseline arm: the prior of the target's kind
    when the arm is named after it (``linear``: the per-element fit), the training mean for
    ``mean``."""
    from molpre.targets.kinds import MeanPrior

    kind = study_spec(job).kind
    if arm == kind.prior_name:
        return kind.prior
    if arm == "mean":
        return lambda numbers, labels: MeanPrior(float(np.mean(kind.scalar(labels))))
    raise ValueError(f"baseline {arm!r} does not apply to a target of kind {kind.name!r}")


def _prior(job: dict, data) -> tuple[str, dict, np.ndarray]:
    """A ``linear`` or ``mean`` baseline child: the prior fitted on the budget's labels."""
    from molpre.study.baselines import prior_baseline

    spec = study_spec(job)
    split = _split(job, data)
    train = np.concatenate([split.train, split.val])
    errors = prior_baseline([a.numbers for a in data.atoms], spec.kind.scalar(data.labels[spec.name]),
                            train, split.test, fit_prior(job, job["child"]["arm"]))
    run_id, metrics = _baseline_run(job, errors, {})
    return run_id, metrics, errors


def is_failed(mae: float, baseline: float | None, margin: float) -> bool:
    """A neural child failed when its test MAE is not below ``(1 - margin) * baseline``
    (NaN counts as failed; no baseline, nothing to judge)."""
    if baseline is None:
        return False
    return not mae < (1.0 - margin) * baseline


def _tag(job: dict, run_id: str, metrics: dict, errors: np.ndarray, seconds: float,
         data, extra_tags: dict) -> dict:
    """Write the study's params, tags, inputs and errors onto a finished child run."""
    import mlflow

    from molpre.study.answer import headline_metric, rounded
    from molpre.study.records import (
        BUDGET_TAG,
        DONE,
        SEED_TAG,
        delta_fields,
        headline,
        log_split_inputs,
        scores,
    )

    c = job["child"]
    out = Path(job["out"]) / "children" / Child(**c).slug
    out.mkdir(parents=True, exist_ok=True)
    errors_file = out / "test_errors.npy"
    np.save(errors_file, errors)
    spec = study_spec(job)
    score = scores(spec, metrics)
    mae, base, unit = score["test_mae"], score["baseline_test_mae"], score["unit"]
    margin = float(job.get("fail_margin", 0.0))
    failed = c["mode"] is not None and is_failed(mae, base, margin)
    split = _split(job, data)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_param("arm", c["arm"])
        mlflow.log_metric("wall_time_s", round(seconds, 1))
        if np.isfinite(mae):  # the runs table's short, rounded column (molpre.study.answer)
            mlflow.log_metric(headline_metric(spec), rounded(mae))
        log_split_inputs(job["data"], job["target"],
                         [data.mol_ids[i] for i in np.concatenate([split.train, split.val])],
                         [data.mol_ids[i] for i in split.test], c["budget"], c["seed"])
        tags = {"mlflow.parentRunId": job["parent_id"], "study.id": job["parent_id"],
                BUDGET_TAG: str(c["budget"]), SEED_TAG: str(c["seed"]), "arm": c["arm"],
                "encoder_name": c["encoder"] or "none",
                "failed": "true" if failed else "false",
                "study.errors_file": str(errors_file.resolve()),
                "mlflow.note.content": headline(spec, c["arm"], c["budget"], c["seed"], metrics,
                                                c["encoder"], failed),
                **extra_tags}
        if failed:
            tags["failure_reason"] = (f"test MAE {mae:.4g} {unit} not below "
                                      f"(1 - {margin:g}) x the {spec.kind.prior_description} "
                                      f"baseline {base:.4g} {unit} of its own labels")
        mlflow.set_tags(tags)
        mlflow.set_tag(DONE, "1")
    return {"arm": c["arm"], "budget": c["budget"], "seed": c["seed"], "run_id": run_id,
            **score, "failed": failed, "failure_reason": tags.get("failure_reason", ""),
            "errors_file": str(errors_file), "seconds": seconds, **delta_fields(tags)}


#: Lightning's banners go through the rank_zero loggers (as in molpre.cli's setup).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                     "lightning.pytorch.utilities.rank_zero",
                     "lightning.fabric.utilities.rank_zero")


@contextlib.contextmanager
def quiet_lightning():
    """While a child trains, Lightning prints no per-fit banners and tips (``GPU available:
    ...``, ``Tip: ...``); its warnings still show, and the levels are restored after."""
    loggers = [logging.getLogger(n) for n in LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def run_child(job: dict) -> dict:
    """Run one child job (a plain dict, picklable for a process pool) and return its record:
    the study's task for the executor (molpre.executor.map_calls)."""
    import mlflow

    from molpre.executor.hooks import maybe_crash

    maybe_crash(Child(**job["child"]).run_name)  # test hooks: a child that dies or hangs
    os.environ["MLFLOW_TRACKING_URI"] = job["tracking_uri"]
    mlflow.set_tracking_uri(job["tracking_uri"])
    raw = load_data(job["data"], job["target"], job["unit"])
    data, delta_tags = child_data(job, raw)
    start = time.perf_counter()
    child_tags: dict = {}
    if job["child"]["arm"] in PRIOR_ARMS:
        run_id, metrics, errors = _prior(job, data)
    else:
        with quiet_lightning():
            run_id, metrics, errors, child_tags = _finetune(job, raw, data if delta_tags else None)
    return _tag(job, run_id, metrics, errors, time.perf_counter() - start, data,
                {**job.get("tags", {}), **delta_tags, **child_tags})


def krr_child(job: dict, kernel: np.ndarray, rows: np.ndarray, data, krr: dict) -> dict:
    """A KRR child on a precomputed kernel over data rows ``rows`` (see baselines.local_kernels):
    KRR of what the prior of the target's kind leaves."""
    from molpre.study.baselines import krr_baseline

    start = time.perf_counter()
    data, delta_tags = child_data(job, data)
    split = _split(job, data)
    index = {int(r): i for i, r in enumerate(rows)}
    train = np.array([index[int(r)] for r in np.concatenate([split.train, split.val])])
    test = np.array([index[int(r)] for r in split.test])
    numbers = [data.atoms[int(r)].numbers for r in rows]
    spec = study_spec(job)
    labels = spec.kind.scalar(data.labels[spec.name])[rows]
    errors, choice = krr_baseline(kernel, numbers, labels, train, test, krr["sigmas"],
                                  krr["lambdas"], krr["folds"], job["child"]["seed"],
                                  spec.kind.prior)
    extra = {"krr_sigma": choice["sigma"], "krr_lambda": choice["lambda"],
             spec.metric_name("cv_mae", "krr_"): choice["cv_mae_ev"] * spec.metric_factor}
    run_id, metrics = _baseline_run(job, errors, extra)
    return _tag(job, run_id, metrics, errors, time.perf_counter() - start, data,
                {"krr.choice": f"sigma={choice['sigma']:g}, lambda={choice['lambda']:g} (CV in budget)",
                 **job.get("tags", {}), **delta_tags})


def child_job(child: Child, **fields: Any) -> dict:
    """A picklable job dict for ``child``."""
    return {"child": asdict(child), **fields}


#: Baseline arms computed by a prior (molpre.targets.kinds): ``linear`` (per-element fit,
#: extensive targets) and ``mean`` (the training mean, any target).
PRIOR_ARMS = ("linear", "mean")

__all__ = ["PRIOR_ARMS", "run_child", "krr_child", "child_job"]
