"""--accelerator / --devices / --threads: resolved before any work, one-line errors (CPU only)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from molpre.cli import main
from molpre.train.finetune_config import ConfigError, FinetuneConfig
from molpre.train.hardware import resolve_accelerator


def test_auto_is_cpu_without_a_gpu_and_gpu_is_refused():
    assert not torch.cuda.is_available()  # tests hide GPUs (tests/conftest.py)
    assert resolve_accelerator("auto") == "cpu" and resolve_accelerator("CPU") == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_accelerator("gpu")
    with pytest.raises(ValueError, match="accelerator 'tpu'"):
        resolve_accelerator("tpu")


def test_finetune_config_checks_accelerator_and_devices():
    assert FinetuneConfig().accelerator == "auto" and FinetuneConfig().devices == 1
    with pytest.raises(ConfigError, match="accelerator 'tpu'"):
        FinetuneConfig(accelerator="tpu")
    with pytest.raises(ConfigError, match="devices 2"):
        FinetuneConfig(devices=2)


def test_finetune_cli_gpu_without_gpu_is_one_line_before_any_work(tmp_path, shared_data):
    result = CliRunner().invoke(main, [
        "finetune", "--data", str(shared_data / "qm9_sample3000.extxyz.gz"), "--target",
        "u0_atom", "--accelerator", "gpu", "-o", str(tmp_path / "ft")])
    assert result.exit_code == 1 and "no CUDA device" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ft").exists()  # nothing started


def test_pretrain_cli_gpu_without_gpu_is_one_line_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["pretrain", "--accelerator", "gpu", "-o", str(tmp_path / "p")])
    assert result.exit_code == 1 and "no CUDA device" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "p" / "shards").exists()
