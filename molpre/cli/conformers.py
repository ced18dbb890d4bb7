"""`molpre conformers`: molecules in, MMFF-optimized 3D conformers out (extxyz), streamed."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import click

from molpre.chem.config import CLI_FIELDS, ConformersConfig
from molpre.cli.options import config_options


def _run(outcomes, writer, tqdm) -> None:
    with tqdm(outcomes, unit="mol", desc="conformers", mininterval=0.5) as bar:
        for outcome in bar:
            writer.write(outcome)
            bar.set_postfix(ok=writer.ok, failed=writer.failed, refresh=False)


@click.command("conformers", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_options(ConformersConfig, CLI_FIELDS, section="conformers", set_example="n=2")
@click.option("--out", "out_alias", hidden=True, type=click.Path(path_type=Path))
def command(input_path: Path, config: ConformersConfig, out_alias: Path | None) -> None:
    """Generate 3D conformers for every molecule in INPUT.

    INPUT is .smi/.txt (SMILES [id]), .csv/.tsv (SMILES column), .sdf, or .xyz/.extxyz (bonds
    perceived by RDKit, charge from the frame or 0); .gz works too. Molecules are standardized
    (largest fragment, sanitized), embedded with RDKit ETKDGv3 and optimized with MMFF94 (UFF
    where MMFF94 has no parameters). Every input row ends up either as frames in OUT or as a
    row,input,reason line in OUT.errors.csv.

    Example: molpre conformers mols.csv -o confs.extxyz --n 4 --workers 2
    """
    from tqdm import tqdm

    from molpre.chem import (
        ConformerConfig,
        ConformerWriter,
        InputError,
        conformer_stream,
        errors_path,
        read_molecules,
    )
    from molpre.cli.options import config_file
    from molpre.outputs import guard

    out = Path(config.output) if config.output else out_alias
    if out is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    guard([out, errors_path(out)], [input_path, config_file()])
    try:
        records = read_molecules(input_path, smiles_col=config.smiles_col, id_col=config.id_col,
                                 config=config.intake())
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    start, stopped = time.perf_counter(), None
    stream = conformer_stream(records, n=config.n, seed=config.seed, workers=config.workers,
                              config=ConformerConfig(timeout_s=config.embed_timeout))
    with ConformerWriter(out) as writer:
        try:
            _run(stream, writer, tqdm)
        except (OSError, EOFError, ValueError, csv.Error) as exc:  # e.g. a truncated .gz
            stopped = exc  # keep the rows so far: the writer renames them into place
    if stopped is not None:
        raise click.ClickException(
            f"reading {input_path} stopped after {writer.ok + writer.failed} rows "
            f"({type(stopped).__name__}: {stopped}); rows so far are in {out} and {writer.errors}")
    seconds = time.perf_counter() - start
    click.echo(f"ok {writer.ok}, failed {writer.failed}, conformers {writer.conformers}, "
               f"{seconds:.1f} s -> {out} (rejected rows: {writer.errors})")
