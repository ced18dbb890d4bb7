"""``molpre predict``: energies for a molecule file from a finetuned model, one row per input."""

from __future__ import annotations

from pathlib import Path

import click

TABLE_SUFFIXES = (".csv", ".tsv")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "source", required=True,
              help="A finetune OUTDIR, its model/ dir, a model.ckpt, runs:/<id>/model, "
                   "models:/<name>/<version> or models:/<name>@<alias>. No code from it runs.")
@click.option("--conformers", default=3, show_default=True, type=click.IntRange(min=1),
              help="Conformers per molecule (SMILES/2D inputs): at most this many; ETKDG "
                   "prunes those within 0.5 A heavy-atom RMS of another, so a rigid molecule "
                   "(benzene, ethanol) keeps 1. n_conformers reports how many were used.")
@click.option("--aggregation", default="lowest", show_default=True,
              type=click.Choice(["lowest", "boltzmann"]), help="How conformer energies combine.")
@click.option("--temperature", default=298.15, show_default=True, type=click.FloatRange(min=1),
              help="Kelvin, for --aggregation boltzmann.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--smiles-col", help="SMILES column of a CSV input (default: guessed, any case).")
@click.option("--id-col", help="Id column of a CSV input (default: guessed; else FILE-ROW).")
@click.option("--seed", default=0, show_default=True, type=int, help="Conformer seed.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=0),
              help="Conformer processes, also for a delta model's cheap-level PySCF "
                   "(0: one per CPU core).")
@click.option("--device", default="auto", show_default=True,
              help="Where the model runs: auto (a GPU if torch sees one), cpu, cuda, cuda:1.")
@click.option("--chunk", default=256, show_default=True, type=click.IntRange(min=1),
              help="Molecules per prediction chunk (bounded memory).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="OUT.csv: a CSV input's columns, then id, smiles, energy_ev, "
                   "energy_minus_atomref_ev, status, error, n_conformers.")
def command(input_path, source, conformers, aggregation, temperature, batch_size, smiles_col,
            id_col, seed, workers, device, chunk, output) -> None:
    """Predict energies (eV) for INPUT (.smi, .csv, .tsv, .sdf, .xyz) with a finetuned model.

    Every input row gives one output row, in order; a CSV input's columns are kept.
    Invalid molecules, unsupported elements and failed conformers are rows with status
    "error" and the reason. energy_minus_atomref_ev is the energy minus the model's
    per-element reference energies (an atomization-style energy).
    """
    from molpre.outputs import guard
    from molpre.tracking import check_model_source

    guard([output], [input_path, source])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=device, n_conformers=conformers,
                                   aggregation=aggregation, temperature=temperature,
                                   batch_size=batch_size, seed=seed, workers=workers,
                                   chunk=chunk)
    except (ModelLoadError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        inputs, ids = _inputs(Path(input_path), smiles_col, id_col)
        n_ok, n_err = _write(predictor.predict_iter(inputs, ids, smiles_col=smiles_col), output)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"predicted {n_ok} molecules, {n_err} errors -> {output}")


def _inputs(path: Path, smiles_col: str | None, id_col: str | None):
    """A DataFrame (CSV/TSV: columns kept) with ids, or a lazy stream of MoleculeRecords."""
    from molpre.chem import read_molecules

    records = read_molecules(path, smiles_col=smiles_col, id_col=id_col)  # checks the file
    suffix = (Path(path.stem).suffix if path.suffix == ".gz" else path.suffix).lower()
    if suffix not in TABLE_SUFFIXES:
        return records, None
    return _table(path, suffix, id_col)


def _table(path: Path, suffix: str, id_col: str | None):
    import pandas as pd

    from molpre.chem.readers import ID_COLUMNS
    from molpre.inference.inputs import find_column

    frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                        keep_default_na=False)
    column = find_column(list(frame.columns), id_col, ID_COLUMNS, "id")
    stem = Path(path.stem).stem if path.suffix == ".gz" else path.stem
    given = frame[column].tolist() if column is not None else [""] * len(frame)
    ids = [v.strip() or f"{stem}-{k}" for k, v in enumerate(given, start=1)]
    return frame, ids


def _write(frames, output: str) -> tuple[int, int]:
    """Write chunks to a temporary file beside ``output``, renamed onto it at the end."""
    from molpre.outputs import atomic_output

    n_ok = n_err = 0
    with atomic_output(output, newline="") as out:
        for k, frame in enumerate(frames):
            frame.to_csv(out, header=k == 0, index=False)
            n_ok += int((frame["status"] == "ok").sum())
            n_err += int((frame["status"] != "ok").sum())
    return n_ok, n_err
