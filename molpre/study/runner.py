"""``run_study(config) -> StudyResult``: plan, audit, run the missing children, report.

Resumable: the parent run id is kept in OUT/study.json and children that finished (tag
``study.done``) are read back from the store instead of being run again. Neural and prior
children run on the executor (molpre.executor): a process pool of ``workers`` processes,
one torch thread each, with its retries (a child whose worker dies is run again, up to
:data:`MAX_ATTEMPTS` times) and a time limit per child (:func:`child_deadline_s`: a child
still running then has its worker killed and is left for the next resume). KRR children run
in this process on one kernel computed once over the molecules they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from molpre.study import children as ch
from molpre.study.config import StudyConfig, StudyConfigError
from molpre.study.encoders import PreparedEncoder, prepare_encoder, shared_start_warnings
from molpre.study.plan import (
    Child,
    check_budgets,
    finetune_config,
    plan,
    read_test_rows,
    val_fraction,
    write_test_ids,
)

log = logging.getLogger(__name__)


@dataclass
class StudyResult:
    """What a study produced: the parent run, every child record and the summary."""

    parent_run_id: str
    experiment_id: str
    records: list[dict]
    summary: dict
    out: Path
    ran: int = 0
    reused: int = 0
    artifacts: list[Path] = field(default_factory=list)


def study_experiment(name: str, uri: str) -> str:
    """Create (once) the study's experiment with artifacts inside the store's own folder."""
    from molpre.tracking import ensure_experiment

    return ensure_experiment(name, uri)


def _job(config: StudyConfig, child: Child, encoders: dict[str, PreparedEncoder], test_ids: Path,
         out: Path, uri: str, parent: str, experiment_id: str, teaching: dict | None = None) -> dict:
    enc = encoders.get(child.encoder) if child.encoder else None
    path = None if enc is None else str(enc.control_path if child.control else enc.encoder_path)
    tags = {}
    if enc is not None:
        tags = {"encoder_path": path or "", "control": str(child.control).lower()}
        if enc.run_id:
            tags["pretrain_run_id"] = enc.run_id
            tags["pretrain_model_uri"] = enc.model_uri
    fields = dict(data=config.data, target=config.target, unit=config.unit,
                  test_ids=str(test_ids), val_fraction=val_fraction(config, child.budget),
                  out=str(out), fail_margin=config.train.fail_margin, tracking_uri=uri, parent_id=parent, experiment_id=experiment_id,
                  tags=tags, delta={"data": list(config.delta.data), "scale": config.delta.scale})
    if not child.is_baseline:
        ft = finetune_config(config, child, test_ids, path, out, config.experiment)
        fields["finetune"] = ft.resolved()
    if child.taught:
        from molpre.study.teaching import teacher_dir

        fields["teach"] = {"teacher": str(teacher_dir(config.teach.study, child).resolve()),
                           "target": config.spec().name, **(teaching or {})}
    return ch.child_job(child, **fields)


def _teaching(config: StudyConfig, children: list[Child], data, out: Path,
              finished: list[Child]) -> dict | None:
    """The teaching study of the taught ``children`` still to run (StudyConfigError, before
    any child runs, when it is unfinished, of another target or lacks one of their
    teachers), with ``teach.extra`` prepared (molpre.study.teach_extra); None when none is
    to run (a finished child needs no teacher to be reported)."""
    from molpre.study.teach_extra import check_same_teaching, prepare_extra, teaching_record
    from molpre.study.teaching import check_teachers, teaching_study

    taught = [c for c in children if c.taught]
    if config.teach.enabled:
        try:
            check_same_teaching(out, teaching_record(config.teach.extra, config.teach.extra_max),
                                [c.run_name for c in finished if c.taught])
        except ValueError as err:
            raise StudyConfigError(f"teach.extra: {err}") from err
    if not taught:
        return None
    teaching = teaching_study(config.teach.study, config.target)
    check_teachers(config.teach.study, taught)
    if config.teach.extra:
        _check_extra_levels(config, data, teaching["delta_data"])
        try:
            extra = prepare_extra(config.teach.extra, config.teach.extra_max, data, out,
                                  teaching["delta_data"], max(1, config.workers))
        except (ValueError, OSError) as err:
            raise StudyConfigError(f"teach.extra: {err}") from err
        log.warning("teach.extra: %d molecules for the teachers (%s)", extra["extra_audit"]["used"],
                    ", ".join(f"{k} {v}" for k, v in extra["extra_audit"].items() if k != "source"))
        teaching.update(extra)
    return teaching


def _check_extra_levels(config: StudyConfig, data, teacher_stores: list[str]) -> None:
    """A delta study's student reads the extra molecules' cheap level, which the study
    computes with its teacher's: StudyConfigError unless the teacher is a delta model on the
    study's own level."""
    if not config.delta.enabled:
        return
    if not teacher_stores:
        raise StudyConfigError("teach.extra in a delta study needs a delta teacher (its cheap "
                               "level is computed for the extra molecules); the teaching "
                               "study is plain")
    ours = ch.cheap_labels(data, list(config.delta.data)).level
    theirs = ch.cheap_labels(data, list(teacher_stores)).level
    if ours != theirs:
        raise StudyConfigError(f"teach.extra: the teacher's cheap level is {theirs}, this "
                               f"study's {ours}; the student reads one level for every molecule")


def with_cheap_store(config: StudyConfig, data, out: Path) -> StudyConfig:
    """A study whose ``delta.level`` is set: the level computed once for every molecule (with
    its forces when every row of ``data`` has forces) into OUT/cheap-<level>[-forces].db
    (content-keyed: a resumed study computes nothing twice), and the
    config pointing its ``delta.data`` there; other configs unchanged."""
    import dataclasses

    if not config.delta.level:
        return config
    from molpre.data.datasets import every_row_has_forces
    from molpre.delta import cheap_labels

    # with the cheap level's forces where the labels have forces: children then fit
    # forces - s x F_cheap (without them a delta child fell back to energies only)
    forces = every_row_has_forces(data, config.forces_key)
    name = config.delta.level.replace('/', '_') + ("-forces" if forces else "")
    store = out / f"cheap-{name}.db"  # an energies-only store of an older run stays unused
    cheap_labels(data, config.delta.level, cache=str(store), workers=max(1, config.workers),
                 forces=forces)
    delta = dataclasses.replace(config.delta, level=None, data=[str(store)])
    return dataclasses.replace(config, delta=delta)


def _krr(config: StudyConfig, jobs: list[dict], data) -> list[dict]:
    """Run the KRR children on one kernel over every molecule they touch."""
    from molpre.study.baselines import AtomTable, fchl19, local_kernels

    if not jobs:
        return []
    rows = set()
    for job in jobs:
        split = ch._split(job, data)
        rows |= set(split.train.tolist()) | set(split.val.tolist()) | set(split.test.tolist())
    rows = np.array(sorted(rows))
    numbers = [data.atoms[r].numbers for r in rows]
    elements = sorted({int(z) for a in data.atoms for z in a.numbers})
    reps = fchl19(numbers, [data.atoms[r].positions for r in rows], elements)
    table = AtomTable.build(reps, numbers)
    log.info("KRR kernel over %d molecules", len(rows))
    kernel = local_kernels(table, table, config.krr.sigmas)
    krr = {"sigmas": config.krr.sigmas, "lambdas": config.krr.lambdas, "folds": config.krr.folds}
    return [ch.krr_child(job, kernel, rows, data, krr) for job in jobs]


#: Modules each worker imports at start, before its first child's clock starts.
WARM_IMPORTS = ("torch", "mlflow", "lightning.pytorch", "molpre.data.datasets",
                "molpre.train.finetune")
#: Runs of a child lost to a worker death (segfault, out of memory) before it is left for
#: the next resume.
MAX_ATTEMPTS = 2
#: Seconds a child may run beyond its training cap (data, evaluation, saving) before its
#: worker is killed; the cap itself is ``train.max_minutes`` (Lightning's max_time).
DEADLINE_GRACE_S = 600.0


def child_deadline_s(config: StudyConfig) -> float | None:
    """Wall-clock limit of one child: 1.5 x ``train.max_minutes`` plus
    :data:`DEADLINE_GRACE_S` (None without a cap)."""
    minutes = config.train.max_minutes
    return None if not minutes else 90.0 * minutes + DEADLINE_GRACE_S


def _run_jobs(jobs: list[dict], workers: int, progress, deadline_s: float | None = None
              ) -> list[dict]:
    """Run neural/prior children on a process pool of ``workers``; a child that raises,
    dies twice or overruns ``deadline_s`` is logged and left for the next resume."""
    from molpre.executor import ProcessBackend, map_calls

    out: list[dict] = []
    if not jobs:
        return out
    backend = ProcessBackend(min(workers, len(jobs)), threads=1,
                             preload=("molpre.study.children",), warm=WARM_IMPORTS)
    try:
        for index, record, reason in map_calls(backend, ch.run_child, jobs,
                                               max_attempts=MAX_ATTEMPTS, window=workers,
                                               deadline_s=deadline_s):
            if reason is not None:
                log.error("child %s did not finish: %s (rerun the study to retry it)",
                          Child(**jobs[index]["child"]).run_name, reason)
                continue
            out.append(record)
            progress(record)
    except BaseException:  # Ctrl-C: do not wait for the children in flight
        backend.kill()
        raise
    finally:
        backend.close()
    return out


def _echo(record: dict) -> None:
    flag = " FAILED" if record["failed"] else ""
    log.warning("%s N=%d seed=%d: %.4g %s (%.0f s)%s", record["arm"], record["budget"],
                record["seed"], record["test_mae"], record["unit"], record["seconds"] or 0, flag)


def _probes(config: StudyConfig, encoders: dict[str, PreparedEncoder], data, test_ids: Path,
            out: Path) -> dict:
    """Ridge and L1 probes of each encoder's frozen embeddings (molpre.study.probes); a
    probe that cannot run is reported, not fatal (the children are the study)."""
    from molpre.study.probes import probe_encoders

    if not (config.probes.enabled and encoders):
        return {}
    rows = read_test_rows(test_ids, data)
    try:
        return probe_encoders(encoders, data, rows, out, config.probes.max_train,
                              config.probes.folds, spec=config.spec())
    except Exception as err:  # noqa: BLE001 - reported in the summary instead
        log.error("embedding probes failed: %s", err)
        return {"error": str(err)}


def run_study(config: StudyConfig, tracking_uri: str | None = None, progress=_echo,
              report_only: bool = False) -> StudyResult:
    """Run (or resume) a study and write its report; see the module docstring.
    ``report_only``: run no child, report on the finished ones (every budget and arm)."""
    import mlflow

    from molpre.study.audit_step import audit_study
    from molpre.study.records import (
        finished_children,
        open_parent,
        recorded_parent,
        share_runs_view,
    )
    from molpre.study.report import finish_report
    from molpre.tracking import tracking_uri as resolve_uri

    uri = resolve_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    out = Path(config.out)
    data = ch.load_data(config.data, config.target, config.unit)  # every check before any run
    out.mkdir(parents=True, exist_ok=True)
    test_ids = write_test_ids(config, data, out)
    if not report_only:
        check_budgets(config, data, read_test_rows(test_ids, data))
    config = with_cheap_store(config, data, out)
    if config.delta.enabled:  # fail now, not in every child, when a cheap energy is missing
        ch.cheap_labels(data, list(config.delta.data))
    encoders = {e.name: prepare_encoder(e, out) for e in config.encoders}
    experiment_id = study_experiment(config.experiment, uri)
    spec = config.spec()
    known = recorded_parent(out, experiment_id)  # None on a first run
    done = finished_children(experiment_id, known, spec) if known else {}
    todo = [] if report_only else [c for c in plan(config) if c.key not in done]
    teaching = _teaching(config, todo, data, out, [c for c in plan(config) if c.key in done])  # only children still to run need their teacher
    parent = open_parent(out, experiment_id, config.name, config.to_dict())
    share_runs_view(experiment_id, spec, parent)
    for line in shared_start_warnings(config, encoders):
        log.warning(line)
    audit = audit_study(config, encoders, data, test_ids)
    log.warning("study %s: %d children finished, %d to run", config.name, len(done), len(todo))
    jobs = [_job(config, c, encoders, test_ids, out, uri, parent, experiment_id, teaching)
            for c in todo]
    new = _krr(config, [j for j in jobs if j["child"]["arm"] == "krr"], data)
    for record in new:
        progress(record)
    new += _run_jobs([j for j in jobs if j["child"]["arm"] != "krr"], config.workers, progress,
                     child_deadline_s(config))
    records = sorted([*done.values(), *new], key=lambda r: (r["budget"], r["arm"], r["seed"]))
    probes = _probes(config, encoders, data, test_ids, out)
    summary, artifacts = finish_report(config, parent, records, encoders, audit, data, test_ids,
                                       probes)
    mlflow.MlflowClient().set_terminated(parent, "FINISHED")
    return StudyResult(parent, experiment_id, records, summary, out, len(new), len(done), artifacts)
