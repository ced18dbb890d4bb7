"""``molpre ui``: the MLflow UI on 127.0.0.1 over the project's store, at the runs page."""

from __future__ import annotations

import click


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runs_url(port: int, experiment_id: str | None, share_key: str | None = None) -> str:
    """The runs page (MLflow 3 otherwise opens an experiment on its GenAI overview), with the
    study's shared view (its metric and param columns) when ``share_key`` is given."""
    base = f"http://127.0.0.1:{port}/"
    if not experiment_id:
        return base
    url = f"{base}#/experiments/{experiment_id}/runs"
    return f"{url}?viewStateShareKey={share_key}" if share_key else url


def shared_view(uri: str, experiment_id: str | None) -> str | None:
    """The study's share key when ``molpre study`` wrote its runs view on the experiment."""
    import mlflow

    from molpre.study.records import VIEW_KEY, VIEW_TAG

    if not experiment_id:
        return None
    tags = mlflow.MlflowClient(uri).get_experiment(experiment_id).tags
    return VIEW_KEY if VIEW_TAG in tags else None


def server_command(uri: str, port: int) -> list[str]:
    """``mlflow server`` bound to loopback over ``uri`` (artifacts served from the store's folder)."""
    import sys

    from molpre.tracking import artifact_location

    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    location = artifact_location(uri)
    if location:
        cmd += ["--default-artifact-root", location]
    return cmd


def latest_experiment(uri: str, name: str | None) -> str | None:
    """The id of experiment ``name``, else the one with the most recent run."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    if name:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise click.ClickException(f"no experiment {name!r} in {uri}")
        return exp.experiment_id
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.experiment_id if runs else None


def stop_server(proc, timeout: float = 20.0) -> None:
    """Stop a server started with ``start_new_session=True`` and its workers (its own
    process group: the server's id), SIGTERM then SIGKILL."""
    import os
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tracking-uri", help="Store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--experiment", help="Experiment to open (default: the one with the latest run, e.g. molpre-study).")
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
def command(tracking_uri, experiment, port) -> None:
    """Start the MLflow UI on 127.0.0.1 over molpre's tracking store and print the URL of
    the runs page (studies: nested children fold under their parent run). Ctrl-C stops it.

      molpre ui --experiment molpre-study
    """
    import subprocess

    from molpre.tracking import tracking_uri as resolve

    uri = resolve(tracking_uri)
    experiment_id = latest_experiment(uri, experiment)
    port = port or free_port()
    proc = subprocess.Popen(server_command(uri, port), start_new_session=True)
    url = runs_url(port, experiment_id, shared_view(uri, experiment_id))
    click.echo(f"MLflow UI over {uri}: {url}  (Ctrl-C to stop)")
    try:
        proc.wait()
    except KeyboardInterrupt:
        stop_server(proc)
