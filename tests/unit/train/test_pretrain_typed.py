"""pretrain() keeps its typed PretrainConfig to the end: a dict or a YAML path is loaded
into one at the door (checked there), and the code below reads fields, not dict keys."""

import ast
from pathlib import Path

import pytest

import molpre.train.pretrain as pretrain_module
from molpre.config import ConfigError
from molpre.train.pretrain import as_config
from molpre.train.pretrain_config import PretrainConfig, with_objectives

SECTIONS = {"corpus", "model", "objectives", "train", "monitor", "probe", "tracking", "seed",
            "output", "resume"}


def test_no_config_is_read_by_dict_key():
    tree = ast.parse(Path(pretrain_module.__file__).read_text())
    keyed = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Subscript)
             and isinstance(node.ctx, ast.Load)
             and isinstance(node.slice, ast.Constant) and node.slice.value in SECTIONS]
    assert not keyed, f"config read by key at lines {keyed}"


def test_every_input_becomes_one_checked_config(tmp_path):
    typed = PretrainConfig(output=str(tmp_path / "o"))
    assert as_config(typed) is typed
    merged = as_config(typed, {"train": {"lr": 3e-4}})
    assert merged.train.lr == 3e-4 and merged.output == typed.output
    path = tmp_path / "p.yaml"
    path.write_text("pretrain:\n  seed: 4\n  train: {epochs: 2}\n")
    assert (as_config(str(path)).seed, as_config(str(path)).train.epochs) == (4, 2)
    assert as_config({"model": {"preset": "medium"}}).model.preset == "medium"
    with pytest.raises(ConfigError, match="train.lrr"):
        as_config({"train": {"lrr": 1}})


def test_objectives_are_chosen_on_the_typed_config():
    config = with_objectives(PretrainConfig(), ["mask"])
    assert config.objectives["mask"]["weight"] == 1.0
    assert config.objectives["contrast"]["weight"] == 0.0
    with pytest.raises(ConfigError, match="objectives must be among"):
        with_objectives(PretrainConfig(), ["nope"])


def test_input_paths_are_logged_absolute(tmp_path, monkeypatch):
    """A run started in one folder names its corpus so that a study started elsewhere finds it."""
    from molpre.train.pretrain import with_absolute_paths

    (tmp_path / "corpus").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = with_absolute_paths(as_config({"corpus": {"shards": "corpus", "path": "mols.csv"},
                                         "probe": {"data": "probe.extxyz", "target": "u0"}}))
    assert cfg.corpus.shards == str(tmp_path / "corpus")
    assert cfg.corpus.path == str(tmp_path / "mols.csv")
    assert cfg.probe.data == str(tmp_path / "probe.extxyz")
    assert with_absolute_paths(as_config({})).corpus.shards is None
