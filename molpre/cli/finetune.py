"""``molpre finetune``: learn energies from a label store or extxyz, log the run and model."""

from __future__ import annotations

import click

from molpre.cli.options import config_options
from molpre.train.finetune_config import CLI_FIELDS, FinetuneConfig


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

    --ensemble K trains K members (seeds SEED..SEED+K-1, one split) into one committee
    model: predictions then carry <column>_std spreads and an ood flag calibrated on the
    validation set.
    """
    from molpre.cli.options import config_file
    from molpre.config import ConfigError
    from molpre.outputs import folder, guard
    from molpre.tracking import check_tracking_uri

    if not config.data:
        raise click.UsageError("give --data (or data: in --config)")
    guard([folder(config.out)], [config.data, config.encoder, config.test_ids, config.split_file,
                                 *(config.delta or "").split(","), config_file()])
    check_tracking_uri()  # before torch and Lightning are imported: fails in seconds
    from molpre.data.datasets import DatasetError
    from molpre.data.splits import SplitError
    from molpre.train.finetune import finetune

    try:
        result = finetune(config)
    except (ConfigError, DatasetError, SplitError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    m = result.metrics
    parts = [f"{k} {m[k]:.4g} (baseline {m.get('baseline_' + k, float('nan')):.4g})"
             for k in m if k.startswith("test_mae_") and k not in ("test_mae_mev", "test_mae_kcal")]
    if "test_mae_mev" in m:
        parts.insert(0, f"test MAE {m['test_mae_mev']:.1f} meV ({m['test_mae_kcal']:.3f} kcal/mol), "
                        f"atomref-only {m.get('baseline_test_mae_mev', float('nan')):.1f} meV")
    if config.ensemble > 1:
        parts.append(f"committee of {config.ensemble} (seeds {config.seed}..{config.seed + config.ensemble - 1}), "
                     f"out-of-domain on {m.get('test_ood_fraction', float('nan')):.0%} of test")
    click.echo(
        f"finetune {config.mode}: {result.split_sizes['train']} train / "
        f"{result.split_sizes['val']} val / {result.split_sizes['test']} test; {'; '.join(parts)}; "
        f"model {result.out / 'model'}; MLflow run {result.run_id}"
    )
