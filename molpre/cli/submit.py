"""``molpre submit``: a batch job (label, predict, corpus) on Dask, local or on a cluster."""

from __future__ import annotations

from pathlib import Path

import click


def _backend(spec, scheduler: str | None, workers: int | None):
    """``(client, cluster or None, description)`` for --scheduler (address or profile YAML)."""
    from molpre.workflow import connect, jobqueue_cluster, load_profile, local_cluster

    if scheduler is None:
        client, cluster = local_cluster(workers, spec.threads)
        n = len(cluster.workers)
        return client, cluster, f"LocalCluster({n} workers x {spec.threads} threads)"
    if scheduler.endswith((".yaml", ".yml")):
        from distributed import Client

        profile = load_profile(scheduler)
        if workers:
            from dataclasses import replace

            profile = replace(profile, workers=workers)
        cluster = jobqueue_cluster(profile)
        return Client(cluster), cluster, f"{profile.kind}({profile.workers} workers)"
    return connect(scheduler), None, scheduler


def _quiet_dask() -> None:
    """Dask logs every worker death it recovers from; the summary counts them instead
    (``molpre -v submit`` shows them)."""
    import logging

    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _default_out(spec, input_path: Path) -> Path:
    suffix = {"label": ".labels.db", "predict": ".predictions.csv", "corpus": ".shards"}
    return input_path.with_name(input_path.stem + suffix[spec.kind])


@click.command("submit")
@click.argument("job_path", metavar="JOB.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help="Molecule file: .smi/.csv/.tsv/.sdf/.xyz/.extxyz (.gz ok).")
@click.option("--scheduler", default=None, metavar="ADDRESS|PROFILE.yaml",
              help="tcp://host:port of a running Dask scheduler, or a dask-jobqueue profile "
                   "(workflows/slurm.yaml, pbs.yaml). Default: a LocalCluster on 127.0.0.1.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: cores // the job's threads; for a profile: "
                   "overrides its `workers`).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="label: store (.db); predict: .parquet or .csv; corpus: shard directory. "
                   "Default: beside the input. A re-run with the same OUT resumes.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a job spec key (dotted, value read as YAML), e.g. "
                   "--set level.basis=6-31g --set chunk_size=2. Repeatable.")
@click.option("--no-track", is_flag=True, help="Do not log the job manifest to MLflow.")
def command(job_path: Path, input_path: Path, scheduler: str | None, workers: int | None,
            out: Path | None, overrides: tuple[str, ...], no_track: bool) -> None:
    """Run the batch job JOB.yaml (workflows/label.yaml, predict.yaml, corpus.yaml) on INPUT.

    Every input row ends as one ok or error row (OUT's ledger, OUT.ledger.sqlite, is the
    record of progress: a re-run skips finished rows, so a killed submit resumes). A worker
    that dies has its chunk re-run, then split into single molecules; a molecule that keeps
    killing workers becomes an error row. The manifest is logged as an MLflow run.

    Example: molpre submit workflows/label.yaml --input mols.smi --workers 2 -o labels.db
    --set level.basis=6-31g
    """
    from molpre.chem import InputError
    from molpre.executor import DaskBackend
    from molpre.qc.levels import LevelError
    from molpre.tracking import check_tracking_uri
    from molpre.workflow import SchedulerError, SpecError, load_job, run_job
    from molpre.workflow.jobs import check_job

    _quiet_dask()
    try:
        spec = load_job(job_path, overrides)
    except SpecError as err:
        raise click.UsageError(str(err)) from None
    if not input_path.is_file():
        raise click.UsageError(f"--input {input_path}: no such file")
    out = out or _default_out(spec, input_path)
    profile = scheduler if scheduler and scheduler.endswith((".yaml", ".yml")) else None
    check_job(spec, input_path, out, extra_inputs=[job_path, profile])  # before the cluster
    if not no_track:
        check_tracking_uri()  # the manifest is logged at the end: an unreachable store fails now
    try:
        client, cluster, where = _backend(spec, scheduler, workers)
    except (SchedulerError, SpecError) as err:
        raise click.ClickException(str(err)) from None
    try:
        summary = run_job(spec, input_path, out, DaskBackend(client), scheduler=where,
                          track=not no_track, checked=True)
    except (InputError, LevelError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; finished rows are recorded, re-run to resume") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    click.echo(f"{summary.line()} -> {out}")
