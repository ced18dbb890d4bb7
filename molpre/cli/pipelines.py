"""``molpre pipelines``: list, show and copy the YAML pipelines shipped inside the package.

The files live in the repository's ``pipelines/`` folder and ship in the wheel as
``molpre/pipelines/*.yaml`` (package data), so ``--config pipelines/NAME.yaml`` works outside
a checkout after ``molpre pipelines copy``.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click


def shipped() -> dict[str, Traversable]:
    """``{name: file}`` of every shipped pipeline (``demo`` -> ``.../pipelines/demo.yaml``)."""
    folder = resources.files("molpre") / "pipelines"
    if not folder.is_dir():
        return {}
    return {f.name[:-5]: f for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".yaml")}


def _summary(text: str) -> str:
    """The first comment line of a pipeline (how to run it, or what it is)."""
    for line in text.splitlines():
        if line.startswith("#") and line.lstrip("# ").strip():
            return line.lstrip("# ").strip()
    return ""


def _pick(names: tuple[str, ...]) -> dict[str, Traversable]:
    available = shipped()
    unknown = [n for n in names if n.removesuffix(".yaml") not in available]
    if unknown:
        raise click.UsageError(f"no shipped pipeline {', '.join(unknown)}; "
                               f"available: {', '.join(available) or 'none'}")
    if not names:
        return available
    return {n.removesuffix(".yaml"): available[n.removesuffix(".yaml")] for n in names}


@click.group("pipelines", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """The YAML pipelines shipped with molpre: list, show or copy them.

    Example: molpre pipelines copy && molpre demo --config pipelines/demo.yaml
    """


@command.command("list")
def list_pipelines() -> None:
    """Name and first comment line of every shipped pipeline."""
    available = shipped()
    if not available:
        raise click.ClickException("no pipelines found in this molpre installation")
    width = max(map(len, available))
    for name, file in available.items():
        click.echo(f"{name:<{width}}  {_summary(file.read_text())}")


@command.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print pipeline NAME (e.g. demo) to stdout."""
    (file,) = _pick((name,)).values()
    click.echo(file.read_text(), nl=False)


@command.command("copy")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("-o", "--output", default="pipelines", show_default=True,
              type=click.Path(path_type=Path),
              help="Folder to copy into (created if absent).")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def copy(names: tuple[str, ...], output: Path, force: bool) -> None:
    """Copy pipelines NAME... (default: all) into a folder, to run or edit them.

    With the default folder, the README's `--config pipelines/NAME.yaml` examples work as
    written from the current directory.
    """
    from molpre.outputs import folder, guard

    picked = _pick(names)
    guard([folder(output)], [])
    targets = {name: output / f"{name}.yaml" for name in picked}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise click.ClickException(f"{', '.join(existing)} already {verb}; use --force to "
                                   "overwrite")
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, target in targets.items():
            target.write_text(picked[name].read_text())
    except OSError as err:
        raise click.ClickException(f"cannot write into {output}: {err.strerror}") from None
    click.echo(f"copied {len(targets)} pipelines to {output}: {', '.join(targets)}")
