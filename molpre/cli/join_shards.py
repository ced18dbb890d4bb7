"""``molpre join-shards``: several shard folders as one pretraining corpus."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="join-shards", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folders", metavar="SHARDS...", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="New folder for the joined corpus (must not exist, or be empty).")
@click.option("--keep-offsets", is_flag=True,
              help="Keep the first folder's per-element energy offsets instead of refitting "
                   "them over every joined energy (to resume a run begun on the first corpus).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only when stderr is a terminal).")
def command(folders: tuple[Path, ...], output: Path, keep_offsets: bool,
            progress: bool | None) -> None:
    """Join shard folders (from `molpre pretrain` or a `molpre submit` corpus job) into one
    corpus for `molpre pretrain --shards OUTPUT`.

    Shards are copied and renamed in the order FIRST[:-1], SECOND, ..., FIRST[-1]: the first
    folder's last shard ends OUTPUT, so `--set corpus.val_shards=1` holds out the shard it
    held out before. Molecules are renumbered, molecules.csv and failures.csv concatenated
    (`molpre audit --corpus OUTPUT` sees every molecule). Labeled folders must share their
    level and forces; the per-element energy offsets are refitted over all of them unless
    --keep-offsets. Typical use: your own molecules beside a large fragment corpus.

    Example: molpre join-shards runs/frag/corpus runs/mine/corpus -o runs/joined
    """
    from molpre.data.join import JoinError, join_shards
    from molpre.outputs import folder, guard
    from molpre.runtime import show_progress

    guard([folder(output)], list(folders))
    try:
        manifest = join_shards(list(folders), output, keep_offsets=keep_offsets,
                               progress=show_progress(progress))
    except JoinError as err:
        raise click.UsageError(str(err)) from None
    labels = manifest["labels"]
    level = f", labeled {labels['level']}" if labels else ""
    click.echo(f"joined {len(folders)} folders: {manifest['molecules']} molecules, "
               f"{manifest['conformers']} geometries, {len(manifest['shards'])} shards{level} "
               f"-> {output} ({manifest['join_seconds']:.1f} s)")
