"""``molpre pretrain``: self-supervised pretraining of the encoder on unlabeled molecules."""

from __future__ import annotations

from pathlib import Path

import click


def _overrides(options: dict) -> list[str]:
    """Dotted overrides for the options given on the command line (None = not given)."""
    names = {"corpus": "corpus.path", "shards": "corpus.shards", "conformers": "corpus.conformers",
             "max_molecules": "corpus.max_molecules", "epochs": "train.epochs",
             "max_steps": "train.max_steps", "devices": "train.devices", "seed": "seed",
             "probe_data": "probe.data", "probe_target": "probe.target",
             "preset": "model.preset", "batch_size": "train.batch_size",
             "accelerator": "train.accelerator", "threads": "train.threads",
             "keep_checkpoints": "train.keep_checkpoints",
             "checkpoint_every": "train.checkpoint_every_n_steps"}
    out = []
    for option, key in names.items():
        value = options.get(option)
        if value is not None:
            out.append(f"{key}={value}")
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False),
              help="Molecule file (SMILES/CSV/SDF/XYZ). Default: RDKit's NCI sample.")
@click.option("--shards", type=click.Path(exists=True, file_okay=False),
              help="Use an existing shard directory instead of building one.")
@click.option("--objectives", default=None,
              help="Comma list of registered objectives, e.g. mask,contrast,denoise (default: all three).")
@click.option("--conformers", type=click.IntRange(min=1), help="Conformers per molecule.")
@click.option("--max-molecules", type=click.IntRange(min=1), help="Use the first M molecules.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the corpus.")
@click.option("--max-steps", type=int, help="Stop after S optimizer steps (-1: no limit).")
@click.option("--batch-size", type=click.IntRange(min=2), help="Molecules per batch.")
@click.option("--preset", type=click.Choice(["small", "medium"]), help="Encoder preset.")
@click.option("--accelerator", type=click.Choice(["auto", "cpu", "gpu"], case_sensitive=False),
              help="auto (default): a GPU when torch sees one, else CPU.")
@click.option("--devices", type=click.IntRange(min=1), help="Processes/GPUs (DDP when > 1).")
@click.option("--threads", type=click.IntRange(min=1), help="torch threads per process.")
@click.option("--checkpoint-every", type=click.IntRange(min=1),
              help="Write OUTDIR/last.ckpt every N steps (default 200).")
@click.option("--keep-checkpoints", type=click.IntRange(min=0),
              help="Periodic checkpoints kept in OUTDIR/checkpoints (default 2; 0: last.ckpt only).")
@click.option("--probe-data", type=click.Path(exists=True, dir_okay=False),
              help="Labeled extxyz(.gz)/ASE db for the linear-probe proxy.")
@click.option("--probe-target", help="Label key of the probe data (e.g. u0_atom).")
@click.option("--seed", type=int, help="The one seed (default 0).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config key by dotted path, e.g. --set train.lr=3e-4.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="OUTDIR: shards/, last.ckpt (resume), encoder.pt (best encoder).")
def command(config, objectives, sets, output, **options) -> None:
    """Pretrain the encoder with masked atoms, conformer contrast and denoising.

    Builds conformer shards from the corpus (or reuses OUTDIR/shards), trains with
    Lightning (DDP with --devices N), logs every metric, the collapse watch and the probe
    proxy to MLflow (MLFLOW_TRACKING_URI, else ./mlflow.db) and writes the best encoder to
    OUTDIR/encoder.pt for `molpre finetune --encoder`. OUTDIR/last.ckpt is written every
    --checkpoint-every steps; rerunning with the same OUTDIR resumes from it in the same
    MLflow run (raise --max-steps/--epochs to train further). Ctrl-C stops after the
    current step, saves last.ckpt and marks the run KILLED.
    """
    from molpre.train.pretrain import PretrainInterrupted, pretrain
    from molpre.train.pretrain_config import check_objectives, resolve, set_objectives

    if (options.get("probe_data") is None) != (options.get("probe_target") is None):
        raise click.UsageError("--probe-data and --probe-target go together")
    try:
        cfg = resolve(config, [*_overrides(options), *sets])
        if objectives:
            set_objectives(cfg, objectives.split(","))
            check_objectives(cfg)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    cfg["output"] = str(Path(output))
    try:
        result = pretrain(cfg)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    except PretrainInterrupted as exc:
        click.echo(f"molpre pretrain: {exc}", err=True)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        click.echo("molpre pretrain: interrupted before training started; run the same "
                   "command again to continue", err=True)
        raise SystemExit(130) from None
    probe = (f", best probe MAE {result.best_probe_mae:.4g} at step {result.best_step}"
             if result.best_probe_mae is not None else "")
    alarm = " [collapse suspected]" if result.collapse_suspected else ""
    click.echo(f"pretrained {result.global_step} steps on {result.manifest['conformers']} "
               f"conformers of {result.manifest['molecules']} molecules{probe}{alarm}; "
               f"encoder {result.encoder_path}; MLflow run {result.run_id}")
