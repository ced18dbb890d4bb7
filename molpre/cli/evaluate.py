"""``molpre evaluate MODEL DATA``: a model's errors on a labeled file, a parity plot, MLflow."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="MODEL")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", help="Label to compare with (default: the model's finetune target); "
                              "a key of DATA as energy=energy_ev[eV].")
@click.option("--key", help="Read --target (default energy) from this info key of DATA, e.g. "
                            "energy_ev (with --unit: its unit).")
@click.option("--unit", help="Unit of --target in DATA (default: the model's finetune unit).")
@click.option("--forces-key", help="atoms.arrays key of DATA's forces, e.g. forces_ev_a "
                                   "(default: the model's finetune forces_key, else forces).")
@click.option("--forces/--no-forces", default=None,
              help="Also score forces (default: when every labeled conformer has forces).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="auto", show_default=True,
              help="Where the model runs: auto (a GPU if torch sees one), cpu, cuda.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=0),
              help="Processes for a delta model's cheap-level PySCF (0: one per CPU core).")
@click.option("--mlflow/--no-mlflow", "log_mlflow", default=False, show_default=True,
              help="Log the metrics and files as an MLflow run (MLFLOW_TRACKING_URI).")
@click.option("--experiment", default="molpre", show_default=True, help="MLflow experiment.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="OUTDIR: metrics.json, parity.png, predictions.csv.")
def command(source, data_path, target, key, unit, forces_key, forces, batch_size, device,
            workers, log_mlflow, experiment, output) -> None:
    """Score MODEL (as for `molpre predict --model`) on DATA (.extxyz or label .db).

    Every labeled conformer is predicted at its own geometry; prints MAE and RMSE of each
    target the model was finetuned on (energy in meV and kcal/mol, gap/homo/lumo in meV,
    dipole in Debye, ...; --target picks some) and of force components in meV/Angstrom
    when scored.
    """
    from molpre.data.datasets import DatasetError
    from molpre.inference import evaluate_model
    from molpre.outputs import folder, guard
    from molpre.tracking import check_model_source, check_tracking_uri

    guard([folder(output)], [source, data_path])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    if log_mlflow:
        check_tracking_uri()  # before the work it would log: fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=device, progress=False, workers=workers)
        target, unit = _target(target, key, unit, predictor.meta)
        forces_key = forces_key or predictor.meta.get("forces_key")
        data = _labeled(data_path, target, unit, forces, forces_key)
        report = evaluate_model(predictor, data, output, batch_size)
    except (ModelLoadError, DatasetError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if log_mlflow:
        _log(report, source, data, experiment)
    click.echo(_summary(report.metrics, target, output))


def _target(target: str | None, key: str | None, unit: str | None,
            meta: dict) -> tuple[str, str | None]:
    """The target text and unit to read DATA with: the options, else the model's own."""
    from molpre.target_keys import TargetKey

    if key:
        return TargetKey(target or "energy", key, unit).text(), unit
    return target or meta.get("target", "energy"), unit or meta.get("unit", "eV")


def _labeled(path: str, target: str, unit: str, forces: bool | None,
             forces_key: str | None = None):
    """The labeled data; forces when asked, or (auto) when every conformer has them."""
    from molpre.data.datasets import DatasetError, labeled_from_atoms, read_frames
    from molpre.runtime import file_sha256

    frames, digest = read_frames(path), file_sha256(path)
    energy_only = labeled_from_atoms(frames, target, unit, False, source=path, sha256=digest)
    if forces is False:
        return energy_only
    try:
        with_forces = labeled_from_atoms(frames, target, unit, True, source=path, sha256=digest,
                                         forces_key=forces_key)
    except DatasetError:
        with_forces = None
    if forces and (with_forces is None or len(with_forces) < len(energy_only)):
        missing = len(energy_only) - (len(with_forces) if with_forces else 0)
        raise click.ClickException(f"{path}: {missing} labeled conformers have no forces; "
                                   "drop --forces to score energies only")
    if with_forces is not None and len(with_forces) == len(energy_only):
        return with_forces
    return energy_only


def _summary(metrics: dict, target: str, output: str) -> str:
    from molpre.targets import parse_targets

    if not metrics.get("n"):
        return f"no conformer could be scored ({metrics.get('n_unsupported', 0)} unsupported)"
    parts = []
    for spec in parse_targets(target):
        (unit, _), *more = spec.report_units
        also = "".join(f" ({metrics[spec.metric_name('mae', '', u)]:.4g} {u})" for u, _ in more)
        name = target if "," not in target and "=" not in target else spec.name
        parts.append(f"{name}: MAE {metrics[spec.metric_name('mae')]:.4g} {unit}{also}, "
                     f"RMSE {metrics[spec.metric_name('rmse')]:.4g} {unit}")
    text = f"{int(metrics['n'])} conformers, " + "; ".join(parts)
    if "forces_mae_mev_per_a" in metrics:
        text += f"; forces MAE {metrics['forces_mae_mev_per_a']:.1f} meV/A"
    if metrics.get("n_unsupported"):
        text += f"; {int(metrics['n_unsupported'])} skipped (unsupported elements)"
    return f"{text} -> {output}"


def _log(report, source: str, data, experiment: str) -> None:
    import mlflow

    from molpre.tracking import start_run

    config = {"model": str(source), "data": data.source, "target": ",".join(data.targets),
              "unit": ",".join(s.unit for s in data.specs)}
    with start_run("evaluate", config, experiment=experiment,
                   dataset_hashes={"labels": data.sha256}):
        mlflow.log_metrics(report.metrics)
        for path in (report.metrics_path, report.parity_path):
            if path is not None:
                mlflow.log_artifact(str(path))
