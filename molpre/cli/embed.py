"""``molpre embed MODEL INPUT -o OUT.parquet``: one embedding vector per molecule."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="MODEL")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--conformers", default=3, show_default=True, type=click.IntRange(min=1),
              help="Conformers per molecule; the embedding is their mean.")
@click.option("--smiles-col", help="SMILES column of a CSV input (default: guessed, any case).")
@click.option("--id-col", help="Id column of a CSV input (default: guessed; else FILE-ROW).")
@click.option("--seed", default=0, show_default=True, type=int, help="Conformer seed.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=0),
              help="Conformer processes (0: one per CPU core).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="auto", show_default=True,
              help="Where the model runs: auto (a GPU if torch sees one), cpu, cuda.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="OUT.parquet: a CSV input's columns, the predict columns and `embedding` "
                   "(list of floats; null on error rows).")
def command(source, input_path, conformers, smiles_col, id_col, seed, workers, batch_size,
            device, output) -> None:
    """Per-molecule embeddings of INPUT (.smi, .csv, .sdf, .xyz) from MODEL's encoder.

    The embedding is the encoder's pooled invariant features of each conformer, averaged
    over the molecule's conformers: for similarity search or as features for other models.
    """
    import pandas as pd

    from molpre.cli.predict import _inputs
    from molpre.outputs import guard
    from molpre.tracking import check_model_source

    guard([output], [input_path, source])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=device, n_conformers=conformers, seed=seed,
                                   workers=workers, batch_size=batch_size)
        inputs, ids = _inputs(Path(input_path), smiles_col, id_col)
        frame = predictor.embed(inputs, ids, smiles_col=smiles_col)
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
