"""``molpre ui``: the MLflow UI on 127.0.0.1 over the project's store, at the runs page."""

from __future__ import annotations

import click


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The MLflow UI's workflow for molpre's runs: "Model training", not its default "GenAI"
#: (under which a study's parent run opened as an "Evaluation"). The UI reads it from the
#: URL, else from the browser's last choice.
WORKFLOW = "workflowType=machine_learning"


def runs_url(port: int, experiment_id: str | None, share_key: str | None = None) -> str:
    """The runs page (MLflow 3 otherwise opens an experiment on its GenAI overview) in the
    model-training workflow, with the study's shared view (its columns, the answer on the
    parent's row) when ``share_key`` is given."""
    base = f"http://127.0.0.1:{port}/"
    if not experiment_id:
        return f"{base}#/experiments?{WORKFLOW}"
    url = f"{base}#/experiments/{experiment_id}/runs?{WORKFLOW}"
    return f"{url}&viewStateShareKey={share_key}" if share_key else url


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


def check_port(port: int) -> None:
    """Raise ClickException when ``port`` on 127.0.0.1 cannot be bound (in use, or reserved)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise click.ClickException(
                f"port {port} on 127.0.0.1 is not free ({err.strerror or err}); give another "
                "--port, or leave it out for a free one") from None


def wait_until_serving(proc, port: int, timeout_s: float = 120.0) -> None:
    """Return once the server accepts connections on ``port``; ClickException when it exits
    first or does not answer within ``timeout_s``."""
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the MLflow server exited (status {proc.returncode}) "
                                       f"before serving on port {port}; see its messages above")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException(f"the MLflow server did not answer on port {port} within "
                               f"{timeout_s:g} s")


def stop_server(proc, timeout: float = 10.0) -> None:
    """Stop a server started with ``start_new_session=True`` and every process of its group
    (uvicorn, job workers): SIGTERM, up to ``timeout`` s for the server to exit, then SIGKILL
    to whatever of the group is left."""
    import os
    import signal
    import subprocess

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def serve(uri: str, port: int, url_for) -> None:
    """Run ``mlflow server`` in a process group of its own until it stops, Ctrl-C or
    SIGTERM; the group is ended whatever happens. Prints the URL once the server answers."""
    import os
    import subprocess

    env = dict(os.environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # a viewer: no job workers
    proc = subprocess.Popen(server_command(uri, port), start_new_session=True, env=env)
    try:
        wait_until_serving(proc, port)
        click.echo(f"MLflow UI over {uri}: {url_for(port)}  (Ctrl-C to stop)")
        while proc.poll() is None:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
        raise click.ClickException(f"the MLflow server stopped (status {proc.returncode})")
    finally:
        stop_server(proc)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tracking-uri", help="Store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--experiment", help="Experiment to open (default: the one with the latest run, e.g. molpre-study).")
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
def command(tracking_uri, experiment, port) -> None:
    """Start the MLflow UI on 127.0.0.1 over molpre's tracking store and print the URL of
    the runs page, in MLflow's "Model training" workflow (a study: its answer on the parent
    run's row, the children folded under it). Ctrl-C (or SIGTERM) stops it and every
    process it started. MLflow's UI opens run pages in the workflow last chosen in the
    browser (GenAI at first): click "Model training" once and it stays.

      molpre ui --experiment molpre-study
    """
    from molpre.tracking import check_tracking_uri

    uri = check_tracking_uri(tracking_uri)  # an unreachable store fails in seconds
    if port:
        check_port(port)
    experiment_id = latest_experiment(uri, experiment)
    view = shared_view(uri, experiment_id)
    serve(uri, port or free_port(), lambda p: runs_url(p, experiment_id, view))
