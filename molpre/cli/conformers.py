"""`molpre conformers`: molecules in, MMFF-optimized 3D conformers out (extxyz), streamed."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import click

DEFAULT_ELEMENTS = "H,C,N,O,F,S,Cl"


def _elements(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from molpre.chem import IntakeConfig, MoleculeError

    symbols = tuple(s.strip() for s in value.split(",") if s.strip())
    if not symbols:
        raise click.BadParameter("give at least one element symbol, e.g. H,C,N,O")
    try:
        IntakeConfig(elements=symbols).atomic_numbers()
    except MoleculeError as exc:
        raise click.BadParameter(str(exc)) from None
    return symbols


def _run(outcomes, writer, tqdm) -> None:
    with tqdm(outcomes, unit="mol", desc="conformers", mininterval=0.5) as bar:
        for outcome in bar:
            writer.write(outcome)
            bar.set_postfix(ok=writer.ok, failed=writer.failed, refresh=False)


@click.command("conformers")
@click.argument("input_path", metavar="INPUT",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="Output extxyz file OUT (required); rejected rows go to OUT.errors.csv "
                   "beside it. Both are replaced only when the run ends.")
@click.option("--out", "out_alias", hidden=True, type=click.Path(path_type=Path))
@click.option("--n", "n", default=4, show_default=True, type=click.IntRange(min=1),
              help="Conformers per molecule (RMS pruning may keep fewer; for XYZ/3D SDF input "
                   "the given geometry is conformer 0).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="RDKit embedding seed (same seed, same conformers).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=0),
              help="Worker processes, one thread each (0: one per CPU).")
@click.option("--smiles-col", default=None, metavar="NAME",
              help="CSV column holding SMILES (default: found by name, e.g. 'smiles').")
@click.option("--id-col", default=None, metavar="NAME",
              help="CSV column holding molecule ids (default: found by name, e.g. 'id').")
@click.option("--elements", default=DEFAULT_ELEMENTS, show_default=True, callback=_elements,
              help="Comma-separated elements to accept; others become error rows.")
@click.option("--max-heavy-atoms", default=100, show_default=True, type=click.IntRange(min=1),
              help="Larger molecules become error rows (total atoms, H included, are limited "
                   "to twice this).")
@click.option("--neutralize/--keep-charges", default=False, show_default=True,
              help="Neutralize charged molecules with RDKit's Uncharger.")
@click.option("--embed-timeout", default=20, show_default=True, type=click.IntRange(min=1),
              metavar="S", help="Seconds per ETKDG embedding call; molecules that need longer "
                                "become error rows (large, flexible molecules may need more).")
def command(input_path: Path, out: Path | None, out_alias: Path | None, n: int, seed: int,
            workers: int, smiles_col: str | None, id_col: str | None, elements: tuple[str, ...],
            max_heavy_atoms: int, neutralize: bool, embed_timeout: int) -> None:
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
        IntakeConfig,
        conformer_stream,
        errors_path,
        read_molecules,
    )
    from molpre.outputs import guard

    out = out or out_alias
    if out is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    guard([out, errors_path(out)], [input_path])
    config = IntakeConfig(elements=elements, max_heavy_atoms=max_heavy_atoms,
                          max_atoms=2 * max_heavy_atoms, neutralize=neutralize)
    try:
        records = read_molecules(input_path, smiles_col=smiles_col, id_col=id_col, config=config)
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    start, stopped = time.perf_counter(), None
    stream = conformer_stream(records, n=n, seed=seed, workers=workers,
                              config=ConformerConfig(timeout_s=embed_timeout))
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
