"""``molpre pretrain``: self-supervised pretraining of the encoder on unlabeled molecules."""

from __future__ import annotations

import click

from molpre.cli.options import config_options
from molpre.train.pretrain_config import CLI_FIELDS, PretrainConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_options(PretrainConfig, CLI_FIELDS, section="pretrain", set_example="train.lr=3e-4",
                config_argument=True)
@click.option("--objectives", default=None,
              help="Comma list of registered objectives: mask, contrast, denoise, "
                   "cheap_energy, cheap_forces (the last two need a labeled corpus). "
                   "Default: the config's.")
def command(config: PretrainConfig, objectives: str | None) -> None:
    """Pretrain the encoder: masked atoms, conformer contrast, denoising and, on a labeled
    corpus (`molpre submit workflows/corpus_xtb.yaml`), a cheap level's energies and forces
    (--objectives cheap_energy,cheap_forces).

    Builds conformer shards from the corpus (or reuses OUTDIR/shards), trains with
    Lightning (DDP with --devices N), logs every metric, the collapse watch and the probe
    proxy to MLflow (MLFLOW_TRACKING_URI, else ./mlflow.db) and writes the best encoder to
    OUTDIR/encoder.pt for `molpre finetune --encoder`. Rerunning with the same OUTDIR
    resumes from OUTDIR/last.ckpt (raise --max-steps/--epochs to train further).
    OUTDIR/last.ckpt is written every --checkpoint-every steps, so a killed run resumes in the
    same MLflow run. Ctrl-C stops after the current step, saves last.ckpt and marks the run
    KILLED.
    """
    from molpre.cli.options import config_file
    from molpre.config import ConfigError
    from molpre.outputs import folder, guard
    from molpre.tracking import check_tracking_uri
    from molpre.train.pretrain_config import with_objectives

    guard([folder(config.output)], [config.corpus.path, config.corpus.shards,
                                    config.probe.data, config_file()])
    try:
        if objectives:
            config = with_objectives(config, objectives.split(","))
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    check_tracking_uri()  # before torch and Lightning are imported: fails in seconds
    from molpre.train.pretrain import PretrainInterrupted, pretrain

    try:
        result = pretrain(config)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    except PretrainInterrupted as exc:
        click.echo(f"molpre pretrain: {exc}", err=True)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        click.echo("molpre pretrain: interrupted before training started; run the same "
                   "command again to continue", err=True)
        raise SystemExit(130) from None
    probe = (f", best probe MAE {result.best_probe_mae:.4g} at step {result.best_step}"
             if result.best_probe_mae is not None else "")
    verdict = probe_verdict(result.best_probe_mae, result.init_probe_mae)
    alarm = " [collapse suspected]" if result.collapse_suspected else ""
    total, held_out = result.manifest["molecules"], result.molecules_held_out
    validation = f", {held_out} held out for validation" if held_out else ""
    used = (f"{result.molecules_used} molecules ({result.manifest['conformers']} conformers in "
            f"the corpus{validation})" if result.molecules_used + held_out >= total else
            f"the first {result.molecules_used} of {total} molecules (--max-molecules"
            f"{validation})")
    click.echo(f"pretrained {result.global_step} steps on {used}{probe}{alarm}; "
               f"encoder {result.encoder_path}; MLflow run {result.run_id}")
    if verdict:
        click.echo(verdict)


def probe_verdict(best: float | None, init: float | None) -> str:
    """One line comparing the frozen-embedding probe of the pretrained encoder with the same
    probe on its random initialization ('' without a probe)."""
    if best is None or init is None:
        return ""
    if best < init:
        return (f"probe: the pretrained encoder's frozen embeddings fit the probe target better "
                f"than its random init ({best:.4g} vs {init:.4g}, {init / best:.2f}x)")
    return (f"WARNING probe: the pretrained encoder's frozen embeddings fit the probe target no "
            f"better than its random init ({best:.4g} vs {init:.4g}): expect no gain from it")
