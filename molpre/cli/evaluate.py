"""``molpre evaluate MODEL DATA``: a model's errors on a labeled file, a parity plot, MLflow."""

from __future__ import annotations

import click

from molpre.cli.options import config_options
from molpre.inference.config import EVALUATE_FIELDS, EvaluateConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="MODEL")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, dir_okay=False))
@config_options(EvaluateConfig, EVALUATE_FIELDS, section="evaluate", set_example="batch_size=32")
def command(source: str, data_path: str, config: EvaluateConfig) -> None:
    """Score MODEL (as for `molpre predict --model`) on DATA (.extxyz or label .db).

    Every labeled conformer is predicted at its own geometry; prints MAE and RMSE of each
    target the model was finetuned on (energy in meV and kcal/mol, gap/homo/lumo in meV,
    dipole in Debye, ...; --target picks some) and of force components in meV/Angstrom
    when scored.
    """
    from molpre.cli.options import config_file
    from molpre.cli.predict import required
    from molpre.data.datasets import DatasetError
    from molpre.inference import evaluate_model
    from molpre.outputs import folder, guard
    from molpre.tracking import check_model_source, check_tracking_uri

    output = required(config.output, "-o / --output")
    guard([folder(output)], [source, data_path, config_file()])
    check_model_source(source)  # an unreachable MLflow store fails in seconds
    if config.mlflow:
        check_tracking_uri()  # before the work it would log: fails in seconds
    from molpre.inference import ModelLoadError, Predictor

    try:
        predictor = Predictor.load(source, device=config.device,
                                   **{**config.predictor_options(), "progress": False})
        target, unit = _target(config.target, config.key, config.unit, predictor.meta)
        forces_key = config.forces_key or predictor.meta.get("forces_key")
        data = _labeled(data_path, target, unit, config.forces, forces_key)
        report = evaluate_model(predictor, data, output, config.batch_size)
    except (ModelLoadError, DatasetError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if config.mlflow:
        _log(report, source, data, config.experiment)
    click.echo(_summary(report.metrics, target, output))


def _target(target: str | None, key: str | None, unit: str | None,
            meta: dict) -> tuple[str, str | None]:
    """The target text and unit to read DATA with: the options, else the model's own."""
    from molpre.targets.keys import TargetKey

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
