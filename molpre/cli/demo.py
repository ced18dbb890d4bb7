"""`molpre demo`: the main job, every stage on the embedded corpus (no download)."""

from __future__ import annotations

import time

import click

from molpre.cli.options import config_options
from molpre.demo import CLI_FIELDS, DemoConfig


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@config_options(DemoConfig, CLI_FIELDS, section="demo", set_example="method=B3LYP")
def command(config: DemoConfig) -> None:
    """Run molpre end to end on RDKit's NCI sample and say what each stage produced.

    Intake and conformers, PySCF labels (HF/STO-3G) for the smallest molecules, pretraining
    on the others (masked atoms, conformer contrast, denoising), finetuning from scratch and
    from the pretrained encoder, and predictions with molpre.Predictor. Runs are tracked in
    OUT/mlflow.db; the last line says how to browse them in the MLflow UI.
    """
    from molpre.config import ConfigError
    from molpre.demo import run_demo
    from molpre.tracking import check_tracking_uri

    try:
        check_tracking_uri(config.tracking_uri)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    start = time.perf_counter()
    result = run_demo(config, echo=click.echo)
    click.echo(f"done in {time.perf_counter() - start:.0f} s; outputs in {result.out}")
    click.echo(f"browse the runs: mlflow ui --backend-store-uri {config.tracking_uri} "
               f"--host 127.0.0.1  (then open the 'molpre-demo' experiment's Training runs)")
