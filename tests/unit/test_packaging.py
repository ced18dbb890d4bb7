"""The two README commands, .ci/run and the Dockerfile stay in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from molpre.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_readme_opens_with_install_demo_and_test_commands():
    install, test = _readme_commands()
    assert install.startswith("pip install torch==2.13.0") and install.endswith("molpre demo")
    assert test.startswith("pip install torch==2.13.0") and '".[test]"' in test
    assert "pytest" in test


def test_ci_runs_the_readme_test_command_as_written():
    _, test = _readme_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines


def test_dockerfile_is_slim_cpu_non_root_with_molpre_entrypoint():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.M)
    torch_at, molpre_at = text.index("torch==2.13.0"), text.index("pip install .")
    assert torch_at < molpre_at, "CPU torch must be installed before molpre"
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["molpre"]' in text


def test_every_registered_subcommand_has_help():
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0
    for name in SUBCOMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, f"{name}: {result.output}"
        assert name in listing.output


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower() for req in requirements}


def test_the_test_extra_carries_every_other_extra():
    """README's test command installs every optional extra, so CI's fresh install checks
    that each one a user is told to install (`pip install 'molpre[krr]'`) really installs."""
    extras = _project()["optional-dependencies"]
    test = _names(extras["test"])
    for name, requirements in extras.items():
        missing = _names(requirements) - test
        assert not missing, f"extra {name!r}: {sorted(missing)} missing from the test extra"


def test_ci_makes_a_fresh_virtual_environment_and_sets_nothing_else():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    _, test = _readme_commands()
    assert any(re.fullmatch(r'python3\.11 -m venv "\$venv"', line) for line in lines)
    assert any("mktemp -d" in line for line in lines)
    assert lines[-1] == test, "the README's test command must be the last thing CI runs"
    assert not [line for line in lines if line.startswith("export ")], "CI must set nothing"


WHEEL_CHECK = r"""
import importlib, pathlib, pkgutil, sys
import molpre
assert "site-packages" in molpre.__file__, molpre.__file__
names = [m.name for m in pkgutil.walk_packages(molpre.__path__, "molpre.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print("imported", len(names), "modules from", pathlib.Path(molpre.__file__).parent)
"""


@pytest.mark.slow
def test_the_built_wheel_with_only_the_test_extra_imports_every_module_and_test(tmp_path):
    """Build the wheel, install it with only the `test` extra into a fresh virtual
    environment (CPU torch first, as README says), import every package module there, and
    collect every test module against the installed wheel (not the checkout)."""
    import shutil
    import subprocess
    import sys

    def run(*args, cwd=tmp_path):
        done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
        assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, ROOT)
    wheel = next(dist.glob("molpre-*.whl"))
    python3 = shutil.which("python3.11") or sys.executable
    run(python3, "-m", "venv", tmp_path / "venv")
    py = tmp_path / "venv" / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", "torch==2.13.0")
    run(py, "-m", "pip", "install", "-q", f"{wheel}[test]")
    assert "imported" in run(py, "-c", WHEEL_CHECK)
    suite = tmp_path / "suite"  # the tests without the checkout: molpre comes from the wheel
    shutil.copytree(ROOT / "tests", suite / "tests")
    shutil.copy(ROOT / "pyproject.toml", suite / "pyproject.toml")
    collected = run(py, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                    "-m", "", cwd=suite)
    assert re.search(r"^\d+ tests? collected", collected, flags=re.M), collected[-2000:]


def _readme_command_table() -> list[str]:
    """The subcommand of each row of README's command table (`molpre NAME ...`)."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^\| `molpre ([\w-]+)", text, flags=re.M)


def test_every_command_in_the_readme_table_exists_and_has_help():
    names = _readme_command_table()
    assert set(names) == set(SUBCOMMANDS), "README's table and the CLI must list the same commands"
    runner = CliRunner()
    for name in names:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name


def test_the_readme_is_one_screen_to_the_first_example_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    before_example = text.split("```python")[0]
    assert len(before_example.splitlines()) <= 40, "the first example must come early"
    assert len(text) < 8000, "the front door stays short; topics go to docs/"
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in link:
            assert (ROOT / link).is_file(), link
