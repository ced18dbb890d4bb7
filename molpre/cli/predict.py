"""``molpre predict``: energies for a molecule file from a finetuned model, one row per input."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "source", required=True,
              help="A finetune OUTDIR, its model/ dir, a model.ckpt, runs:/<id>/model or models:/<name>/<version>.")
@click.option("--conformers", default=3, show_default=True, type=click.IntRange(min=1),
              help="Conformers per molecule (SMILES/2D inputs).")
@click.option("--aggregation", default="lowest", show_default=True,
              type=click.Choice(["lowest", "boltzmann"]), help="How conformer energies combine.")
@click.option("--temperature", default=298.15, show_default=True, type=click.FloatRange(min=1),
              help="Kelvin, for --aggregation boltzmann.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--smiles-col", help="SMILES column of a CSV input (default: guessed).")
@click.option("--seed", default=0, show_default=True, type=int, help="Conformer seed.")
@click.option("--chunk", default=256, show_default=True, type=click.IntRange(min=1),
              help="Molecules per prediction chunk (bounded memory).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="OUT.csv: id, smiles, energy_ev, status, error, n_conformers.")
def command(input_path, source, conformers, aggregation, temperature, batch_size, smiles_col,
            seed, chunk, output) -> None:
    """Predict energies (eV) for INPUT (.smi, .csv, .sdf, .xyz) with a finetuned model.

    Every input row gives one output row; invalid molecules, unsupported elements and failed
    conformers are rows with status "error" and the reason.
    """
    from tqdm import tqdm

    from molpre.chem import read_molecules
    from molpre.outputs import atomic_output, refuse_overwriting_inputs
    from molpre.predict import ModelLoadError, Predictor

    refuse_overwriting_inputs([output], [input_path, source])
    try:
        predictor = Predictor.load(source, n_conformers=conformers, aggregation=aggregation,
                                   temperature=temperature, batch_size=batch_size, seed=seed)
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        records = read_molecules(input_path, smiles_col=smiles_col)
        n_ok = n_err = 0
        with atomic_output(output, newline="") as handle, tqdm(desc="predict", unit="mol") as bar:
            for k, frame in enumerate(_chunks(predictor, records, chunk)):
                frame.to_csv(handle, header=k == 0, index=False)
                n_ok += int((frame["status"] == "ok").sum())
                n_err += int((frame["status"] != "ok").sum())
                bar.update(len(frame))
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"predicted {n_ok} molecules, {n_err} errors -> {output}")


def _chunks(predictor, records, size: int):
    """Predict records in chunks; error records pass through as error rows."""
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield predictor.predict_records(batch)
            batch = []
    if batch:
        yield predictor.predict_records(batch)
