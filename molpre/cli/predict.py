"""``molpre predict``: energies for a molecule file from a finetuned model, one row per input."""

from __future__ import annotations

from pathlib import Path

import click

from molpre.cli.options import config_options
from molpre.inference.config import PREDICT_FIELDS, PredictConfig

TABLE_SUFFIXES = (".csv", ".tsv")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@config_options(PredictConfig, PREDICT_FIELDS, section="predict", set_example="n_conformers=5")
def command(input_path: str, config: PredictConfig) -> None:
    """Predict energies (eV) for INPUT (.smi, .csv, .tsv, .sdf, .xyz) with a finetuned model.

    Every input row gives one output row, in order; a CSV input's columns are kept.
    Invalid molecules, unsupported elements and failed conformers are rows with status
    "error" and the reason. energy_minus_atomref_ev is the energy minus the model's
    per-element reference energies (an atomization-style energy).
    """
    from molpre.cli.options import config_file
    from molpre.outputs import guard
    from molpre.tracking import check_model_source

    source, output = required(config.model, "--model"), required(config.output, "-o / --output")
    guard([output], [input_path, source, config_file()])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=config.device, **config.predictor_options())
    except (ModelLoadError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        inputs, ids = _inputs(Path(input_path), config.smiles_col, config.id_col)
        n_ok, n_err = _write(predictor.predict_iter(inputs, ids, smiles_col=config.smiles_col),
                             output)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"predicted {n_ok} molecules, {n_err} errors -> {output}")


def required(value: str, option: str) -> str:
    """``value``, or the usage error a missing required option gives."""
    if not value:
        raise click.UsageError(f"Missing option '{option}' (or its key in --config).")
    return value


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
