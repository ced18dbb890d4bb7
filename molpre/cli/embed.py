"""``molpre embed MODEL INPUT -o OUT.parquet``: one embedding vector per molecule."""

from __future__ import annotations

from pathlib import Path

import click

from molpre.cli.options import config_options
from molpre.inference.config import EMBED_FIELDS, PredictConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="MODEL")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@config_options(PredictConfig, EMBED_FIELDS, section="embed", set_example="n_conformers=5")
def command(source: str, input_path: str, config: PredictConfig) -> None:
    """Per-molecule embeddings of INPUT (.smi, .csv, .sdf, .xyz) from MODEL's encoder.

    The embedding is the encoder's pooled invariant features of each conformer, averaged
    over the molecule's conformers: for similarity search or as features for other models.
    """
    import pandas as pd

    from molpre.cli.options import config_file
    from molpre.cli.predict import _inputs, required
    from molpre.outputs import guard
    from molpre.tracking import check_model_source

    output = required(config.output, "-o / --output")
    guard([output], [input_path, source, config_file()])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=config.device, **config.predictor_options())
        inputs, ids = _inputs(Path(input_path), config.smiles_col, config.id_col)
        frame = predictor.embed(inputs, ids, smiles_col=config.smiles_col)
    except (ModelLoadError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    _write_parquet(pd.DataFrame(frame).reset_index(drop=True), Path(output))
    n_ok = int((frame["status"] == "ok").sum())
    click.echo(f"embedded {n_ok} molecules, {len(frame) - n_ok} errors -> {output}")


def _write_parquet(frame, target: Path) -> None:
    """Write to a temporary file beside ``target``, then rename onto it."""
    from molpre.outputs import atomic_output

    with atomic_output(target, "wb") as handle:
        frame.to_parquet(handle, index=False)
