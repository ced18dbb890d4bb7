"""`molpre demo`: a small study end to end on the embedded corpus (no download)."""

from __future__ import annotations

import time

import click

from molpre.cli.options import config_options
from molpre.demo import CLI_FIELDS, DemoConfig


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@config_options(DemoConfig, CLI_FIELDS, section="demo", set_example="budgets=[10,20,40]")
def command(config: DemoConfig) -> None:
    """Run a small pretraining study end to end on RDKit's NCI sample and print its report.

    Intake and conformers, PySCF labels (HF/STO-3G energies; --forces adds forces) for the 150
    smallest QM9-domain molecules, GFN2-xTB energies and forces of 500 others' conformers and
    displaced copies, pretraining on those, then a study of the energy minus s x its GFN2-xTB
    energy: scratch, the pretrained encoder and its random-init control, beside the
    per-element linear fit, over 3 label budgets x 3 seeds on one test split. It prints the
    answer (the table of mean test MAE, kcal/mol, 95% interval over seeds, a verdict per
    budget, label savings), registers the best model as models:/molpre-demo@champion and
    predicts a few SMILES with it. A rerun with the same OUT reuses the conformers, labels,
    pretrained encoder and finished study runs. Runs are tracked in OUT/mlflow.db (artifacts
    in OUT/mlartifacts); the last line says how to browse them.
    """
    from molpre.cli.options import config_file
    from molpre.config import ConfigError
    from molpre.demo import run_demo
    from molpre.outputs import folder, guard
    from molpre.tracking import check_tracking_uri

    guard([folder(config.out)], [config_file()])
    try:
        check_tracking_uri(config.tracking_uri)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    start = time.perf_counter()
    try:
        result = run_demo(config, echo=click.echo)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"done in {time.perf_counter() - start:.0f} s; outputs in {result.out}")
    click.echo(f"browse the runs: molpre ui --tracking-uri {config.tracking_uri} --experiment "
               f"molpre-demo  (or mlflow ui --backend-store-uri {config.tracking_uri} "
               f"--host 127.0.0.1, then the experiment's Training runs)")
