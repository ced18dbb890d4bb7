"""`molpre demo`: the main job, every stage on the embedded corpus (no download)."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("demo")
@click.option("-o", "--output", "out", default="molpre-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with demo settings (see pipelines/demo.yaml); flags override it.")
@click.option("--molecules", type=click.IntRange(min=10), default=None,
              help="NCI molecules to read (default 600).")
@click.option("--label-molecules", type=click.IntRange(min=8), default=None,
              help="Smallest molecules to label with PySCF (default 60).")
@click.option("--pretrain-steps", type=click.IntRange(min=1), default=None,
              help="Pretraining steps (default 300).")
@click.option("--finetune-epochs", type=click.IntRange(min=1), default=None,
              help="Finetuning epochs per arm (default 60).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes for conformers and labels (default 2).")
@click.option("--seed", type=int, default=None, help="The one seed for every stage (default 0).")
def command(out: Path, config_path: Path | None, **flags) -> None:
    """Run molpre end to end on RDKit's NCI sample and say what each stage produced.

    Intake and conformers, PySCF labels (HF/STO-3G) for the smallest molecules, pretraining
    on the others (masked atoms, conformer contrast, denoising), finetuning from scratch and
    from the pretrained encoder, and predictions with molpre.Predictor. Runs are tracked in
    OUT/mlflow.db; the last line says how to browse them in the MLflow UI.
    """
    import yaml

    from molpre.demo import config_from_dict, run_demo

    settings = yaml.safe_load(config_path.read_text()) if config_path else {}
    settings = dict(settings or {})
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings["out"] = str(out)
    try:
        config = config_from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    start = time.perf_counter()
    result = run_demo(config, echo=click.echo)
    click.echo(f"done in {time.perf_counter() - start:.0f} s; outputs in {result.out}")
    click.echo(f"browse the runs: mlflow ui --backend-store-uri {config.tracking_uri} "
               f"--host 127.0.0.1  (then open the 'molpre-demo' experiment's Training runs)")
