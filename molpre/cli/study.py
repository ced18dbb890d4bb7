"""``molpre study``: learning curves over budgets x seeds x arms, with intervals and verdicts."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Study YAML (e.g. pipelines/qm9_sample.yaml; keys in molpre/study/config.py).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, value parsed as YAML: --set budgets=[100,300] "
                   "--set train.epochs=50 --set workers=2. Repeatable.")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def command(config_file, overrides, tracking_uri) -> None:
    """Measure how many labels pretraining saves, with honest statistics.

    Runs every (arm, budget, seed) child: scratch, each pretrained encoder's modes, the
    random-init control (the pretraining run's own initial weights through the same path)
    and the per-element linear and KRR/FCHL19 baselines on the same nested splits. Writes
    OUT/summary.json, report.md, report.html and learning_curve.png, and logs one MLflow
    parent run with a child per run. Rerunning resumes: finished children are not re-run.
    A child not better than the per-element baseline is flagged failed and left out of the
    means. Open the result with `molpre ui`. Example:

      molpre study --config pipelines/qm9_sample.yaml --set workers=2
    """
    from molpre.study.config import StudyConfigError, load_study_config
    from molpre.study.contamination import ContaminationError
    from molpre.study.runner import run_study

    try:
        config = load_study_config(config_file, list(overrides))
    except StudyConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        result = run_study(config, tracking_uri)
    except (StudyConfigError, ContaminationError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo((result.out / "report.md").read_text())
    click.echo(f"{result.ran} children run, {result.reused} reused; parent run "
               f"{result.parent_run_id}; report {result.out / 'report.html'}")
