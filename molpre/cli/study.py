"""``molpre study``: learning curves over budgets x seeds x arms, with intervals and verdicts."""

from __future__ import annotations

import click

from molpre.cli.options import config_options
from molpre.study.config import CLI_FIELDS, StudyConfig


def study_inputs(config: StudyConfig) -> list[str | None]:
    """Every file or folder a study reads (the output guard keeps OUT away from them)."""
    from molpre.cli.options import config_file

    encoders = [p for e in config.encoders for p in (e.path, e.corpus)]
    return [config.data, *encoders, *config.delta.data, config.teach.study, config_file()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_options(StudyConfig, CLI_FIELDS, section="study", set_example="train.epochs=50")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--report-only", is_flag=True,
              help="Run no child: rebuild the report from every finished child of the "
                   "study's parent run (all budgets and arms it holds, also those run "
                   "with other --set budgets=... or encoders).")
def command(config: StudyConfig, tracking_uri: str | None, report_only: bool) -> None:
    """Measure how many labels pretraining saves, with honest statistics.

    Runs every (arm, budget, seed) child: scratch, each pretrained encoder's modes, the
    random-init control (the pretraining run's own initial weights through the same path)
    and the baselines of the target's kind (the per-element linear fit for energies, the
    training mean for the gap or any target) and KRR/FCHL19, on the same nested splits,
    plus a ridge and a sparse (L1) probe of each encoder's frozen embeddings; with a
    teach: section, taught arms (<arm>+taught: its labels plus a finished study's same-seed
    model's labels of the unlabeled pool; docs/studies.md). Any registry
    target can be studied (--set target=gap); errors are in its unit. Writes
    OUT/summary.json, report.md, report.html and learning_curve.png, and logs one MLflow
    parent run with a child per run. Rerunning resumes: finished children are not re-run.
    A child not better than that baseline is flagged failed and left out of the means. Every key of the YAML (molpre/study/config.py) can be overridden with --set.
    Open the result with `molpre ui`. Example:

      molpre study --config pipelines/qm9_sample.yaml --set workers=2 --set budgets=[100,300]
    """
    from molpre.config import ConfigError
    from molpre.outputs import folder, guard
    from molpre.study.contamination import ContaminationError
    from molpre.tracking import check_tracking_uri

    try:
        config.validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    guard([folder(config.out)], study_inputs(config))
    check_tracking_uri(tracking_uri)  # before any work: an unreachable store fails in seconds
    from molpre.study.runner import run_study

    try:
        result = run_study(config, tracking_uri, report_only=report_only)
    except (ConfigError, ContaminationError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo((result.out / "report.md").read_text())
    click.echo(f"{result.ran} children run, {result.reused} reused; parent run "
               f"{result.parent_run_id}; report {result.out / 'report.html'}")
