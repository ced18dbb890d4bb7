"""molpre.config: one loader for every config; unknown and mistyped keys named at any depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.cli.options import config_options
from molpre.config import ConfigError, from_dict, load_config, parse_override, setting, to_dict
from molpre.demo import DemoConfig
from molpre.models.encoder import EncoderConfig
from molpre.models.presets import resolve_config
from molpre.study.config import StudyConfig
from molpre.train.finetune_config import FinetuneConfig
from molpre.train.pretrain_config import PretrainConfig, load_pretrain_config, resolve

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Inner:
    lr: float = setting(1e-3, help="Learning rate.")
    steps: int = 10
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outer:
    seed: int = setting(0, help="The seed.")
    tag: str | None = None
    verbose: bool = False
    inner: Inner = field(default_factory=Inner)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_nested_values_are_typed_and_numeric_strings_accepted(tmp_path):
    path = write(tmp_path, "seed: '3'\ninner:\n  lr: 3e-3\n  names: [a, b]\n")
    config = load_config(Outer, path)
    assert config.inner.lr == 0.003 and isinstance(config.inner.lr, float)  # YAML gave "3e-3"
    assert config.seed == 3 and config.inner.names == ["a", "b"] and config.inner.steps == 10
    with pytest.raises(AttributeError):
        config.seed = 4  # frozen


@pytest.mark.parametrize("text, message", [
    ("inner: {lrr: 0.1}\n", "unknown config key 'inner.lrr'; did you mean 'inner.lr'?"),
    ("sead: 1\n", "unknown config key 'sead'; did you mean 'seed'?"),
    ("inner: {steps: ten}\n", "inner.steps: expected int, got 'ten'"),
    ("inner: {steps: 2.5}\n", "inner.steps: expected int, got 2.5"),
    ("verbose: 3\n", "verbose: expected bool"),
    ("inner: 5\n", "inner: expected a mapping"),
    ("inner: {names: abc}\n", "inner.names: expected a list"),
    ("seed: null\n", "seed: expected int, got null"),
])
def test_bad_keys_and_values_name_the_file_and_key(tmp_path, message, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- seed: 1\n- seed: 2\n", "list.yaml")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, write(tmp_path, "seed: [1\n"))


def test_precedence_defaults_file_set_flags(tmp_path):
    path = write(tmp_path, "seed: 1\ntag: file\ninner: {lr: 0.1, steps: 5}\n")
    config = load_config(Outer, path, ["inner.lr=0.2", "tag=set", "inner.steps=7"],
                         **{"inner.steps": 9, "tag": None})
    assert config.seed == 1            # file over default
    assert config.inner.lr == 0.2      # --set over file
    assert config.tag == "set"         # a flag not given (None) does not override
    assert config.inner.steps == 9     # flag over --set
    assert load_config(Outer).inner.lr == 1e-3


def test_override_values_are_yaml_and_keys_checked():
    assert parse_override("train.lr=3e-4") == ("train.lr", "3e-4")  # a YAML 1.1 string ...
    assert load_config(Outer, None, ["inner.lr=3e-4"]).inner.lr == 3e-4  # ... read as a float
    assert load_config(Outer, None, ["inner.names=[x, y]", "tag=null"]).inner.names == ["x", "y"]
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(Outer, None, ["inner.lr"])
    with pytest.raises(ConfigError, match="seed: expected int"):
        load_config(Outer, None, ["seed.x=1"])
    with pytest.raises(ConfigError, match="seed is a value, not a section"):
        load_config(Outer, None, ["seed=1", "seed.x=1"])


def test_set_addresses_list_items(tmp_path):
    """``--set encoders[0].budgets=[100]``: an item of a list already in the file."""
    path = tmp_path / "study.yaml"
    path.write_text("study:\n  data: x.extxyz\n  target: u0_atom\n  encoders:\n"
                    "  - {name: a, path: a.pt}\n  - {name: b, path: b.pt}\n")
    config = load_config(StudyConfig, path, ["encoders[0].budgets=[100]",
                                            "encoders[-1].modes=[probe]"], section="study")
    assert config.encoders[0].budgets == [100] and config.encoders[1].modes == ["probe"]
    assert config.encoders[1].budgets is None
    with pytest.raises(ConfigError, match=r"encoders\[2\].budgets: encoders has 2 item"):
        load_config(StudyConfig, path, ["encoders[2].budgets=[100]"], section="study")
    with pytest.raises(ConfigError, match="train is not a list"):
        load_config(StudyConfig, path, ["train[0]=1"], section="study")
    with pytest.raises(ConfigError, match="must be a dotted name"):
        parse_override("encoders[x].budgets=1")
    with pytest.raises(ConfigError, match=r"encoders\[0\].budgetz"):  # unknown key, still named
        load_config(StudyConfig, path, ["encoders[0].budgetz=[100]"], section="study")


def test_sections_pick_one_command(tmp_path):
    path = write(tmp_path, "finetune: {lr: 0.01}\ndemo: {seed: 3}\n")
    assert load_config(FinetuneConfig, path, section="finetune").lr == 0.01
    assert load_config(DemoConfig, path, section="demo").seed == 3
    bad = write(tmp_path, "finetune: {lr: 0.01}\nlr: 3\n")
    with pytest.raises(ConfigError, match="top-level key 'lr' is not a section"):
        load_config(FinetuneConfig, bad, section="finetune")


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_pipeline_loads(path):
    import yaml

    (section,) = yaml.safe_load(path.read_text())  # one shape: a single command section
    cls = {"finetune": FinetuneConfig, "pretrain": PretrainConfig, "demo": DemoConfig,
           "study": StudyConfig}[section]
    config = load_config(cls, path, section=section)
    assert to_dict(config) and isinstance(config, cls)


def test_pretrain_config_rejects_nested_typos_and_keeps_dict_form():
    with pytest.raises(ConfigError, match="'objectives.mask.wieght'; did you mean 'objectives.mask.weight'"):
        load_pretrain_config(None, ["objectives.mask.wieght=0"])
    with pytest.raises(ConfigError, match="'train.lrr'; did you mean 'train.lr'"):
        resolve({"train": {"lrr": 1e-3}})
    with pytest.raises(ConfigError, match="model.overrides.cutof'; did you mean 'model.overrides.cutoff'"):
        resolve({"model": {"overrides": {"cutof": 4.0}}})
    with pytest.raises(ConfigError, match="model.overrides.channels: expected int"):
        resolve({"model": {"overrides": {"channels": "many"}}})
    with pytest.raises(ConfigError, match="probe.data and probe.target go together"):
        resolve({"probe": {"data": "x.extxyz"}})
    cfg = resolve({"train": {"lr": "3e-4"}, "corpus": {"max_molecules": None}})
    assert cfg["train"]["lr"] == 3e-4 and cfg["corpus"]["max_molecules"] is None
    assert cfg["objectives"]["cheap_energy"]["weight"] == 1.0 and resolve(cfg) == cfg
    assert cfg["objectives"]["mask"]["weight"] == 0.0  # label-free objectives: off by default


def test_finetune_demo_and_encoder_configs_use_the_loader():
    config = FinetuneConfig(lr=1e-3, epochs=3, forces_weight=1.0)
    assert config.resolved()["epochs"] == 3 and config.forces is True
    assert FinetuneConfig.from_dict(config.resolved()) == config.replace(data=config.resolved()["data"])
    assert FinetuneConfig.from_dict({"lr": "3e-3"}).lr == 3e-3
    with pytest.raises(ConfigError, match="epochs: expected int, got 'ten'"):
        FinetuneConfig.from_dict({"epochs": "ten"})
    with pytest.raises(ConfigError, match="needs an encoder"):
        FinetuneConfig.from_dict({"mode": "probe"})
    with pytest.raises(ConfigError, match="'exampels'; did you mean 'examples'"):
        from_dict(DemoConfig, {"exampels": ["CCO"]})
    assert from_dict(DemoConfig, {"examples": ["CCO"]}).examples == ("CCO",)
    with pytest.raises(ConfigError, match="'chanels'; did you mean 'channels'"):
        EncoderConfig.from_dict({"chanels": 4})
    with pytest.raises(ConfigError, match="'cutof'"):
        resolve_config("small", cutof=3.0)
    assert resolve_config("small", cutoff="4").cutoff == 4.0


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize("args, message", [
    (["finetune", "--set", "lrr=1"], "'lrr'; did you mean 'lr'?"),
    (["finetune", "--set", "epochs=ten"], "epochs: expected int, got 'ten'"),
    (["pretrain", "--set", "objectives.mask.wieght=0"], "'objectives.mask.wieght'"),
    (["pretrain", "--set", "train.epochs=ten"], "train.epochs: expected int"),
    (["pretrain", "--probe-target", "u0"], "probe.data and probe.target go together"),
    (["demo", "--set", "molecule=3"], "did you mean 'molecules'?"),
])
def test_cli_reports_config_errors_in_one_line(tmp_path, args, message):
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert message in _one_error_line(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, text", [
    ("finetune", "finetune:\n  train: {lrr: 0.1}\n"),
    ("pretrain", "pretrain:\n  train: {lrr: 0.1}\n"),
    ("demo", "- 1\n- 2\n"),
    ("finetune", "finetune: {epochs: ten}\n"),
])
def test_cli_config_file_errors_name_the_file(tmp_path, command, text):
    path = write(tmp_path, text, "bad.yaml")
    result = CliRunner().invoke(main, [command, "--config", str(path), "-o", str(tmp_path / "o")])
    line = _one_error_line(result)
    assert "bad.yaml" in line and ("train" in line or "top level" in line or "epochs" in line)


def test_generated_options_follow_precedence(tmp_path):
    seen = {}

    @click.command()
    @config_options(Outer, ["seed", "tag", "verbose", "inner.lr", "inner.names"])
    def show(config: Outer) -> None:
        seen["config"] = config

    path = write(tmp_path, "seed: 1\ntag: file\ninner: {lr: 0.1, steps: 5}\n")
    runner = CliRunner()
    result = runner.invoke(show, ["--config", str(path), "--set", "inner.lr=0.2",
                                  "--set", "seed=2", "--seed", "3", "--verbose",
                                  "--names", "a", "--names", "b"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.seed, config.tag, config.verbose) == (3, "file", True)
    assert config.inner == Inner(lr=0.2, steps=5, names=["a", "b"])
    assert "Learning rate. [default: 0.001]" in runner.invoke(show, ["--help"]).output


def test_pretrain_takes_the_config_as_argument_or_option_not_both(tmp_path):
    path = write(tmp_path, "pretrain:\n  corpus: {conformrs: 2}\n", "bad.yaml")
    line = _one_error_line(CliRunner().invoke(main, ["pretrain", str(path), "-o", str(tmp_path / "o")]))
    assert "bad.yaml" in line and "'corpus.conformrs'; did you mean 'corpus.conformers'" in line
    both = CliRunner().invoke(main, ["pretrain", str(path), "--config", str(path), "-o", "x"])
    assert "give the config file once" in _one_error_line(both)
