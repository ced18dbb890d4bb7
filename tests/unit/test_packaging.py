"""The two README commands, .ci/run and the Dockerfile stay in step."""

from __future__ import annotations

import re
from pathlib import Path

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
