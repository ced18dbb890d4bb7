"""``molpre export``: a label store as extxyz (energy/forces as calculator results)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="export")
@click.argument("store", metavar="LABELS.db")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="extxyz file to write (energy in eV, forces in eV/Angstrom).")
@click.option("--include-failed", is_flag=True,
              help="Also write failed rows (no energy; their `status`/`reason` in the comment line).")
def command(store: str, output: str, include_failed: bool) -> None:
    """Write the labels in LABELS.db (path or postgresql:// URL) as extxyz.

    `energy` and `forces` are written as calculator results, so
    `ase.io.read(..., index=":")[i].get_potential_energy()` returns them; every stored
    key-value pair (mol_id, conf_id, level, homo, ...) goes into the frame's info. Frames
    come in the order rows were stored: input order for a one-worker label run, finishing
    order with several workers (mol_id and conf_id identify each frame). OUTPUT is replaced
    only once every frame is written; it may not be the store itself.
    """
    from molpre.data.store import export_extxyz
    from molpre.outputs import guard

    if "://" not in store and not Path(store).is_file():
        raise click.UsageError(f"no label store at {store}")
    guard([output], [store, f"{store}.lock", f"{store}.flock"])
    try:
        n = export_extxyz(store, output, include_failed=include_failed)
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    kind = "rows" if include_failed else "labels"
    click.echo(f"wrote {n} {kind} to {output}")
