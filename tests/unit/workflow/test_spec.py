"""Job specs and cluster profiles: typed, unknown keys named, jobqueue kwargs built."""

from pathlib import Path

import pytest

from molpre.workflow import SpecError, jobqueue_kwargs, load_job, load_profile
from molpre.workflow.spec import job_from_dict

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"


@pytest.mark.parametrize("name", ["label.yaml", "predict.yaml", "corpus.yaml"])
def test_shipped_job_specs_load(name):
    spec = load_job(WORKFLOWS / name)
    assert spec.kind == name.split(".")[0]
    assert spec.chunk_size >= 1 and spec.conformers.n >= 1


def test_unknown_key_is_named_at_any_depth(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("kind: label\nlevel: {method: HF, basiss: sto-3g}\n")
    with pytest.raises(SpecError, match=r"unknown config key 'level.basiss'") as err:
        load_job(path)
    assert str(path) in str(err.value)
    path.write_text("kind: label\nchunksize: 3\n")
    with pytest.raises(SpecError, match="unknown config key 'chunksize'; did you mean 'chunk_size'"):
        load_job(path)


def test_wrong_types_and_kinds_are_refused(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("kind: label\nchunk_size: many\n")
    with pytest.raises(SpecError, match="chunk_size: expected int"):
        load_job(path)
    path.write_text("kind: dock\n")
    with pytest.raises(SpecError, match="'dock' is not one of"):
        load_job(path)
    path.write_text("kind: predict\n")
    with pytest.raises(SpecError, match="model.source"):
        load_job(path)
    with pytest.raises(SpecError, match="no such job spec"):
        load_job(tmp_path / "missing.yaml")


def test_overrides_apply_over_the_file_and_bad_ones_name_the_key(tmp_path):
    from molpre.config import ConfigError

    job = load_job(WORKFLOWS / "label.yaml", ["level.basis=sto-3g", "chunk_size=1",
                                               "intake.elements=[H, C]"])
    assert (job.level.basis, job.chunk_size, job.intake.elements) == ("sto-3g", 1, ("H", "C"))
    assert load_job(WORKFLOWS / "label.yaml").level.basis == "6-31g(2df,p)"  # the default
    with pytest.raises(SpecError, match="unknown config key 'level.basis_set'") as err:
        load_job(WORKFLOWS / "label.yaml", ["level.basis_set=sto-3g"])
    assert isinstance(err.value, ConfigError)
    with pytest.raises(SpecError, match="level.max_cycle: expected int"):
        load_job(WORKFLOWS / "label.yaml", ["level.max_cycle=lots"])
    path = tmp_path / "job.yaml"
    path.write_text("chunk_size: 2\n")
    with pytest.raises(SpecError, match="kind: missing"):
        load_job(path)


def test_float_fields_accept_ints(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("kind: label\nlevel: {time_limit_s: 30}\n")
    assert load_job(path).level.time_limit_s == 30.0


@pytest.mark.parametrize("name", ["slurm.yaml", "pbs.yaml"])
def test_profiles_build_jobqueue_kwargs(name):
    profile = load_profile(WORKFLOWS / name)
    kwargs = jobqueue_kwargs(profile)
    threads = profile.cores // profile.processes
    assert kwargs["cores"] == profile.cores and kwargs["processes"] == profile.processes
    assert f"export OMP_NUM_THREADS={threads}" in kwargs["job_script_prologue"]


def test_profile_refuses_cores_not_a_multiple_of_processes(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("kind: slurm\ncores: 16\nprocesses: 5\n")
    with pytest.raises(SpecError, match="multiple of processes"):
        load_profile(path)


def test_slurm_cluster_object_builds_a_job_script_without_submitting():
    pytest.importorskip("dask_jobqueue")
    from molpre.workflow import jobqueue_cluster

    profile = load_profile(WORKFLOWS / "slurm.yaml")
    cluster = jobqueue_cluster(profile, scale=False)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH" in script and "--cpus-per-task=16" in script
    assert "export OMP_NUM_THREADS=1" in script and "--nthreads 1" in script


def test_a_predict_jobs_model_options_are_the_predictors():
    import dataclasses

    from molpre.inference.options import PredictorOptions
    from molpre.workflow.spec import ModelSpec

    defaults = PredictorOptions()
    spec = job_from_dict({"kind": "predict", "model": {"source": "m.ckpt"}}).model
    assert (spec.aggregation, spec.batch_size) == (defaults.aggregation, defaults.batch_size)
    base = {f.name: f.metadata for f in dataclasses.fields(PredictorOptions)}
    assert all(f.metadata == base[f.name] for f in dataclasses.fields(ModelSpec)
               if f.name != "source")  # declared once, in PredictorOptions
    with pytest.raises(SpecError, match="model: batch_size must be >= 1"):
        job_from_dict({"kind": "predict", "model": {"source": "m.ckpt", "batch_size": 0}})
