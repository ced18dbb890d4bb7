"""``molpre finetune``: learn energies from a label store or extxyz, log the run and model."""

from __future__ import annotations

from pathlib import Path

import click

#: CLI option name -> FinetuneConfig field (None values mean "not given").
_FIELDS = ("data", "target", "unit", "budget", "test_fraction", "test_ids", "test_first",
           "split_seed", "val_fraction", "mode", "encoder", "preset", "epochs", "batch_size",
           "lr", "forces_weight", "patience", "seed", "max_minutes", "register_name",
           "run_name", "threads")


def _config(config_file: str | None, options: dict, out: str):
    import yaml

    from molpre.train.config import FinetuneConfig

    values = {}
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        values = dict(loaded.get("finetune", loaded))
    values.update({k: v for k, v in options.items() if k in _FIELDS and v is not None})
    values["out"] = out
    if values.get("forces_weight"):
        values["forces"] = True
    return FinetuneConfig.from_dict(values)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML with FinetuneConfig fields (e.g. pipelines/finetune.yaml); options override it.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Labels: an ASE .db label store (status=='ok' rows) or extxyz(.gz).")
@click.option("--target", help="A target (energy, homo, lumo, gap, dipole, alpha) or data key "
              "(u0_atom, mu, ...; see molpre/targets.py); several comma-separated: energy,gap.")
@click.option("--unit", help="Stored unit of a single target (eV, hartree, kcal/mol, debye, "
              "bohr^3, ...). Default: the registry's for the file.")
@click.option("--budget", type=click.IntRange(min=2), help="Training labels (train + validation) drawn from the non-test pool. Default: all.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of molecules held out for test (default 0.1).")
@click.option("--test-ids", type=click.Path(exists=True, dir_okay=False),
              help="File of mol_ids (one per line) forming the test set.")
@click.option("--test-first", type=click.IntRange(min=1),
              help="Test = the first N of numpy.random.default_rng(SPLIT_SEED).permutation(n_rows) (the shared QM9 protocol with N=1000).")
@click.option("--split-seed", type=int, help="Seed of the test split (default 0); --seed draws the budget.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of the budget's molecules used for validation (default 0.1).")
@click.option("--mode", help="scratch | probe | freeze:K | full | prior (default scratch).")
@click.option("--encoder", type=click.Path(exists=True, dir_okay=False),
              help="Pretrained encoder checkpoint (molpre pretrain's encoder.pt); needed unless scratch.")
@click.option("--preset", type=click.Choice(["small", "medium"]), help="Encoder preset for scratch (default small).")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (default 100; early stopping on val MAE).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Molecules per batch (default 16).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate (default 3e-3).")
@click.option("--forces-weight", type=click.FloatRange(min=0), help="Weight of the force loss (0: energies only).")
@click.option("--patience", type=click.IntRange(min=1), help="Early-stopping patience in epochs (default 20).")
@click.option("--seed", type=int, help="The one seed (default 0).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), help="Wall-clock cap on training.")
@click.option("--threads", type=click.IntRange(min=1), help="torch threads.")
@click.option("--run-name", help="MLflow run name.")
@click.option("--register-name", help="Also register the model in the MLflow registry under NAME.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="OUTDIR: model/ (MLflow pyfunc), model.ckpt, metrics.json, parity.png.")
def command(config_file, output, **options) -> None:
    """Finetune an energy model on labeled conformers.

    Splits by molecule (conformers of one molecule stay together), fits per-element
    reference energies on the training set, trains with early stopping on validation MAE
    and reports test MAE/RMSE in meV and kcal/mol beside the reference-energies-only
    baseline. The run (config, dataset hash, curves, parity plot, the model as a pyfunc)
    goes to MLFLOW_TRACKING_URI, else ./mlflow.db. Example:

      molpre finetune --data labels.db --target energy --budget 200 -o ft/
    """
    from molpre.data.datasets import DatasetError
    from molpre.data.splits import SplitError
    from molpre.train.config import ConfigError
    from molpre.train.finetune import finetune

    try:
        config = _config(config_file, options, output)
    except (ConfigError, TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if not config.data:
        raise click.UsageError("give --data (or data: in --config)")
    try:
        result = finetune(config)
    except (ConfigError, DatasetError, SplitError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    m = result.metrics
    parts = [f"{k} {m[k]:.4g} (baseline {m.get('baseline_' + k, float('nan')):.4g})"
             for k in m if k.startswith("test_mae_") and k not in ("test_mae_mev", "test_mae_kcal")]
    if "test_mae_mev" in m:
        parts.insert(0, f"test MAE {m['test_mae_mev']:.1f} meV ({m['test_mae_kcal']:.3f} kcal/mol), "
                        f"atomref-only {m.get('baseline_test_mae_mev', float('nan')):.1f} meV")
    click.echo(
        f"finetune {config.mode}: {result.split_sizes['train']} train / "
        f"{result.split_sizes['val']} val / {result.split_sizes['test']} test; {'; '.join(parts)}; "
        f"model {result.out / 'model'}; MLflow run {result.run_id}"
    )
