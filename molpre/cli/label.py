"""``molpre label``: PySCF energies (and forces) for an extxyz conformer set, into a label store."""

from __future__ import annotations

import os

import click

from molpre.cli.options import config_options
from molpre.qc.label_config import CLI_FIELDS, LabelConfig
from molpre.qc.levels import LevelError

#: ASE database URL schemes a label store may use.
STORE_SCHEMES = ("postgresql://", "postgres://", "mysql://", "mariadb://")


def _check_output(output: str, input_path: str, config_path: str | None = None) -> None:
    """The label store must be a .db file or a database URL, and never an input."""
    from molpre.outputs import guard

    guard([output, f"{output}.lock", f"{output}.flock"], [input_path, config_path])
    if "://" in output:
        if not output.startswith(STORE_SCHEMES):
            raise click.UsageError(f"-o {output}: the label store URL must start with "
                                   "postgresql:// (or give a .db file)")
        return
    if not output.endswith(".db"):
        raise click.UsageError(
            f"-o {output}: the label store must be an ASE SQLite database (.db) or a "
            f"postgresql:// URL; write it as e.g. labels.db, then `molpre export labels.db "
            f"-o {output}`")


def _read_frames(path: str) -> list:
    import ase.io

    try:
        return ase.io.read(path, index=":", format="extxyz")
    except Exception as err:
        raise click.ClickException(f"cannot read {path} as extxyz: {err}") from None


@click.command(name="label", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT.extxyz", type=click.Path(exists=True, dir_okay=False))
@config_options(LabelConfig, CLI_FIELDS, section="label", set_example="level.basis=6-31g")
def command(input_path: str, config: LabelConfig) -> None:
    """Label conformers in INPUT.extxyz with PySCF; one store row per conformer, ok or failed.

    The level is B3LYP/6-31G(2df,p) (QM9's) unless --method/--basis (or level: in --config)
    say otherwise. Charge and spin multiplicity come from each frame's info (`charge`,
    `spin`, default 0 and 1). A re-run skips every conformer whose content key (geometry,
    charge, spin, level) is already stored, so a killed run resumes where it stopped. Several
    runs may write one store at once: each key is stored once; a writer that holds DB.flock
    (an OS lock, freed when its process dies) for over $MOLPRE_STORE_LOCK_TIMEOUT seconds
    (default 60) is reported. Export with `molpre export`. With --perturb K, K displaced
    copies of each conformer (seeded Gaussian, --perturb-sigma Angstrom per coordinate) are
    labeled too, by the same PySCF path.
    """
    from molpre.cli.options import config_file
    from molpre.data.store import StoreError, open_store
    from molpre.qc.runner import check_threads, label_conformers

    output = config.output
    if not output:
        raise click.UsageError("Missing option '-o' / '--output' (or output: in --config).")
    _check_output(output, input_path, config_file())
    cores = os.cpu_count() or 1
    threads = config.threads
    workers = config.workers or (max(1, cores // threads) if threads else cores)
    threads = threads or max(1, cores // workers)
    try:
        check_threads(workers, threads, config.oversubscribe)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    frames = _read_frames(input_path)
    if config.perturb:
        from molpre.chem.perturb import perturbed_copies

        frames = perturbed_copies(frames, config.perturb, config.perturb_sigma,
                                  config.perturb_seed)
    try:
        open_store(output)  # creates it; a stale lock, a corrupt store, a read-only folder end here
    except StoreError as err:
        raise click.ClickException(str(err)) from None
    level = config.level
    try:
        summary = label_conformers(frames, output, level, forces=config.forces, workers=workers,
                                   threads=threads, oversubscribe=config.oversubscribe,
                                   retry_failed=config.retry_failed, progress=True)
    except LevelError as err:  # unknown method or basis, found by the first worker
        raise click.UsageError(str(err)) from None
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; finished rows are stored, re-run to resume") from None
    click.echo(f"{level.tag} -> {output}: {summary.line()}")
