"""The ``molpre`` command line: one small module per subcommand, loaded lazily.

Each module ``molpre/cli/<name>.py`` defines a ``click.Command`` called ``command``.
Loading lazily keeps ``molpre --help`` fast (no torch or PySCF import). Every invocation
(the console script, ``python -m molpre``, ``CliRunner``) goes through one error boundary
(:mod:`molpre.cli.boundary`): one line and a non-zero status for every failure. From a real
command line the command also owns Ctrl-C and SIGTERM (:mod:`molpre.interrupts`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import sys

import click

# OpenMP threads that busy-wait for work make multi-threaded torch collapse on a loaded
# machine (measured: molpre trained at 19 conformers/s on 2 threads vs 208 on 1, with more
# runnable processes than cores); passive waiting keeps it. Read once, when the OpenMP
# runtime starts (torch is imported later, by the command); a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from molpre import __version__

#: subcommand name -> module under molpre.cli, in the order the help lists them.
SUBCOMMANDS: dict[str, str] = {
    "demo": "demo",
    "conformers": "conformers",
    "label": "label",
    "export": "export",
    "join-shards": "join_shards",
    "pretrain": "pretrain",
    "finetune": "finetune",
    "predict": "predict",
    "pipelines": "pipelines",
    "evaluate": "evaluate",
    "embed": "embed",
    "submit": "submit",
    "study": "study",
    "audit": "audit",
    "ui": "ui",
}


def _available() -> list[str]:
    return [
        name for name, module in SUBCOMMANDS.items()
        if importlib.util.find_spec(f"molpre.cli.{module}") is not None
    ]


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used, run inside the error
    boundary."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        call = functools.partial(super().main, args, prog_name, complete_var,
                                 standalone_mode=False, **extra)
        if not standalone_mode:
            return call()
        from molpre.cli import boundary
        from molpre.interrupts import own_interrupts

        argv = list(sys.argv[1:] if args is None else args)
        if args is None:  # a real command line (not CliRunner): the command owns Ctrl-C
            with own_interrupts():
                code = boundary.exit_code(call, argv)
            sys.exit(code)
        boundary.run(call, argv)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return _available()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _available():
            return None
        module = importlib.import_module(f"molpre.cli.{SUBCOMMANDS[name]}")
        return module.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="molpre")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """molpre: molecules in, conformers, PySCF labels, pretraining, finetuning, predictions.

    Run `molpre demo` for the whole flow on the embedded corpus, or
    `molpre COMMAND --help` for one step.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # records propagated from libraries too
        handler.setLevel(level)
    if verbose == 0:
        quiet_third_party(training=ctx.invoked_subcommand in TRAINING_COMMANDS)


#: Subcommands that run Lightning (its import-time logging is tamed only for these).
TRAINING_COMMANDS = {"demo", "pretrain", "finetune", "predict", "study"}


def quiet_third_party(training: bool = False) -> None:
    """Keep Lightning's banners, MLflow's info lines and download bars, and known deprecation
    noise out of a command's output (``-v`` brings them back); molpre's own bars stay.

    Lightning is not imported here (its banners are turned down through loggers it never
    resets), so a command that fails early (a bad config, an unreachable tracking URI)
    answers in about a second instead of after Lightning's import.
    """
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                 # Lightning resets its package loggers to INFO when imported, and the top
                 # `lightning` logger has a console handler of its own: its banners ("GPU
                 # available", tips) go through these two loggers, which it never resets.
                 "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")
