"""`molpre pipelines` (shipped YAML pipelines) and `molpre --version`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from molpre import __version__
from molpre.cli import main
from molpre.cli.pipelines import shipped

ROOT = Path(__file__).resolve().parents[2]
REPO_PIPELINES = sorted(ROOT.glob("pipelines/*.yaml"))


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags_print_the_version(flag):
    result = invoke(flag)
    assert result.exit_code == 0 and result.output.strip() == f"molpre, version {__version__}"


def test_the_package_ships_every_repository_pipeline():
    assert REPO_PIPELINES
    files = shipped()
    assert sorted(files) == [p.stem for p in REPO_PIPELINES]
    for path in REPO_PIPELINES:
        assert files[path.stem].read_text() == path.read_text()


def test_list_names_every_pipeline():
    result = invoke("pipelines", "list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == sorted(shipped())


def test_copy_all_into_the_default_folder_makes_readme_paths_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("pipelines", "copy")
    assert result.exit_code == 0, result.output
    for path in REPO_PIPELINES:
        copied = tmp_path / "pipelines" / path.name
        assert yaml.safe_load(copied.read_text()) == yaml.safe_load(path.read_text())


def test_copy_one_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "cfg" / "demo.yaml"
    assert invoke("pipelines", "copy", "demo", "-o", tmp_path / "cfg").exit_code == 0
    target.write_text("edited: true\n")
    again = invoke("pipelines", "copy", "demo", "-o", tmp_path / "cfg")
    assert again.exit_code == 1 and "--force" in again.output
    assert target.read_text() == "edited: true\n"
    assert invoke("pipelines", "copy", "demo", "-o", tmp_path / "cfg", "--force").exit_code == 0
    assert target.read_text() == (ROOT / "pipelines" / "demo.yaml").read_text()


def test_unknown_pipeline_is_a_usage_error():
    result = invoke("pipelines", "show", "nosuch")
    assert result.exit_code == 2 and "available: " in result.output


@pytest.mark.slow
def test_the_wheel_contains_the_pipelines(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    str(ROOT), "-w", str(tmp_path), "-q"], check=True, timeout=600)
    (wheel,) = tmp_path.glob("molpre-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for path in REPO_PIPELINES:
        assert f"molpre/pipelines/{path.name}" in names
