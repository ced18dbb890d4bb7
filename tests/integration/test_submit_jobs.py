"""Heavier `molpre submit` jobs: resume after killing the submitter, predict, corpus -> pretrain."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.store import open_store
from molpre.workflow import DaskBackend, ledger_path, load_job, local_cluster, run_job

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY = ["C", "O", "N", "CC", "CO", "C=O", "C#N", "C#C", "CN", "FC", "CCC", "CCO", "CC=O",
        "OC=O", "NC=O", "CC#N", "COC", "CCN", "C=C", "C=CC"]


def _ledger_count(out: Path) -> int:
    try:
        with sqlite3.connect(ledger_path(out), timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killing_the_submitter_leaves_a_job_the_next_submit_resumes(tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text("".join(f"{s} t{i}\n" for i, s in enumerate(TINY)))
    job = tmp_path / "label.yaml"
    job.write_text("kind: label\nchunk_size: 1\nconformers: {n: 1}\n"
                   "level: {method: HF, basis: sto-3g}\n")
    out = tmp_path / "labels.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "molpre", "submit", str(job), "--input", str(smi),
         "--workers", "2", "-o", str(out), "--no-track"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _ledger_count(out) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the submitter, its cluster and its workers
        proc.wait()
    done_before = _ledger_count(out)
    assert 4 <= done_before < len(TINY), "the kill should land mid-job"
    stored_before = {row.key: row.id for row in open_store(out).select()}
    client, cluster = local_cluster(workers=2)
    try:
        summary = run_job(load_job(job), smi, out, DaskBackend(client), track=False,
                          progress=False)
    finally:
        client.close()
        cluster.close()
    assert summary.skipped == done_before and summary.computed == len(TINY) - done_before
    rows = open_store(out).select()
    keys = Counter(row.key for row in rows)
    assert len(keys) == len(TINY) and set(keys.values()) == {1}
    after = {row.key: row.id for row in open_store(out).select()}
    assert all(after[k] == v for k, v in stored_before.items())  # finished rows untouched
    assert _ledger_count(out) == len(TINY)


@pytest.fixture(scope="module")
def model_uri(shared_data, tmp_path_factory):
    """A tiny finetuned model logged to a temporary MLflow store: ``(tracking uri, runs:/...)``."""
    import ase.io

    from molpre.data.datasets import read_frames
    from molpre.models.checkpoint import load_checkpoint

    tmp = tmp_path_factory.mktemp("model")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    data = tmp / "qm9_60.extxyz"
    ase.io.write(data, read_frames(shared_data / "qm9_sample3000.extxyz.gz")[:60],
                 format="extxyz")
    result = CliRunner().invoke(main, [
        "finetune", "--data", str(data), "--target", "u0_atom", "--unit", "kcal/mol",
        "--budget", "30", "--epochs", "2", "--batch-size", "8", "--seed", "1",
        "-o", str(tmp / "ft")])
    assert result.exit_code == 0, result.output
    _, payload = load_checkpoint(tmp / "ft" / "model.ckpt")
    yield uri, f"runs:/{payload['meta']['run_id']}/model"
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_predict_job_keeps_the_input_columns(model_uri, tmp_path):
    uri, source = model_uri
    table = tmp_path / "library.csv"
    table.write_text("name,smiles,assay\nethanol,CCO,0.5\nbroken,C1CC,0.7\n"
                     "benzene,c1ccccc1,1.5\nwater,O,2.5\n")
    job = tmp_path / "predict.yaml"
    job.write_text(f"kind: predict\nchunk_size: 2\nconformers: {{n: 2}}\n"
                   f"model: {{source: '{source}'}}\n")
    out = tmp_path / "pred.parquet"
    client, cluster = local_cluster(workers=2)
    try:
        summary = run_job(load_job(job), table, out, DaskBackend(client), scheduler="local",
                          progress=False)
    finally:
        client.close()
        cluster.close()
    frame = pd.read_parquet(out)
    assert frame["name"].tolist() == ["ethanol", "broken", "benzene", "water"]
    assert frame["assay"].tolist() == ["0.5", "0.7", "1.5", "2.5"]
    assert "molpre_smiles" in frame.columns  # our column renamed beside the input's own
    assert frame["status"].tolist() == ["ok", "error", "ok", "ok"]
    assert frame["energy_ev"].isna().tolist() == [False, True, False, False]
    assert summary.ok == 3 and summary.errors == 1
    import mlflow

    runs = mlflow.search_runs(experiment_names=["molpre-jobs"], output_format="list")
    assert any(r.data.tags.get("job.id") == summary.job_id for r in runs)


def test_corpus_job_writes_shards_that_pretrain_reads(tmp_path, mlflow_uri):
    from molpre.data.shards import read_manifest

    smi = tmp_path / "corpus.smi"
    smi.write_text("".join(f"{s} c{i}\n" for i, s in enumerate(TINY[:12] + ["bad(("])))
    job = tmp_path / "corpus.yaml"
    job.write_text("kind: corpus\nchunk_size: 4\nconformers: {n: 2}\nshard_size: 5\n")
    out = tmp_path / "shards"
    client, cluster = local_cluster(workers=2)
    try:
        summary = run_job(load_job(job), smi, out, DaskBackend(client), track=False,
                          progress=False)
    finally:
        client.close()
        cluster.close()
    manifest = read_manifest(out)
    assert manifest["molecules"] == 12 and manifest["failed"] == 1 and len(manifest["shards"]) == 3
    molecules = pd.read_csv(out / "molecules.csv")
    assert molecules["mol_id"].tolist() == [f"c{i}" for i in range(12)]  # input order
    assert molecules["inchikey"].str.len().eq(27).all() and "scaffold" in molecules.columns
    assert summary.ok == 12 and summary.errors == 1
    result = CliRunner().invoke(main, ["pretrain", "--shards", str(out), "--epochs", "1",
                                       "--max-steps", "2", "--batch-size", "4",
                                       "-o", str(tmp_path / "pre")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pre" / "encoder.pt").is_file()
