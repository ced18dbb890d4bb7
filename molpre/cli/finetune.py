"""``molpre finetune``: learn energies from a label store or extxyz, log the run and model."""

from __future__ import annotations

import click

from molpre.cli.options import config_options
from molpre.train.config import CLI_FIELDS, FinetuneConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_options(FinetuneConfig, CLI_FIELDS, section="finetune", set_example="lr=3e-4")
def command(config: FinetuneConfig) -> None:
    """Finetune an energy model on labeled conformers.

    Splits by molecule (conformers of one molecule stay together), fits per-element
    reference energies on the training set, trains with early stopping on validation MAE
    and reports test MAE/RMSE in meV and kcal/mol beside the reference-energies-only
    baseline. The run (config, dataset hash, curves, parity plot, the model as a pyfunc)
    goes to MLFLOW_TRACKING_URI, else ./mlflow.db. Example:

      molpre finetune --data labels.db --target energy --budget 200 -o ft/
    """
    from molpre.config import ConfigError
    from molpre.data.datasets import DatasetError
    from molpre.data.splits import SplitError
    from molpre.tracking import check_tracking_uri
    from molpre.train.finetune import finetune

    if not config.data:
        raise click.UsageError("give --data (or data: in --config)")
    try:
        check_tracking_uri()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        result = finetune(config)
    except (ConfigError, DatasetError, SplitError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    m = result.metrics
    click.echo(
        f"finetune {config.mode}: {result.split_sizes['train']} train / "
        f"{result.split_sizes['val']} val / {result.split_sizes['test']} test; test MAE "
        f"{m.get('test_mae_mev', float('nan')):.1f} meV ({m.get('test_mae_kcal', float('nan')):.3f} "
        f"kcal/mol), atomref-only {m.get('baseline_test_mae_mev', float('nan')):.1f} meV; "
        f"model {result.out / 'model'}; MLflow run {result.run_id}"
    )
