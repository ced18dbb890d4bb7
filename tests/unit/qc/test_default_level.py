"""One default level of theory for labels, wherever a level is not given: the dataclass,
``molpre label``, a label job and the shipped workflows/label.yaml."""

from pathlib import Path

from click.testing import CliRunner

from molpre.cli import main
from molpre.config import load_config
from molpre.qc.label_config import LabelConfig
from molpre.qc.levels import DEFAULT_LABEL_LEVEL, LevelOfTheory, parse_level
from molpre.workflow.spec import job_from_dict, load_job

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"


def test_every_default_is_the_one_level():
    assert DEFAULT_LABEL_LEVEL == "b3lyp/6-31g(2df,p)/df/grid3"
    assert LevelOfTheory().tag == DEFAULT_LABEL_LEVEL
    assert parse_level(DEFAULT_LABEL_LEVEL) == LevelOfTheory()  # the tag reads back
    assert load_config(LabelConfig).level == LevelOfTheory()
    assert job_from_dict({"kind": "label"}).level == LevelOfTheory()
    shipped = load_job(WORKFLOWS / "label.yaml").level
    assert shipped.tag == DEFAULT_LABEL_LEVEL and shipped.time_limit_s == 600


def test_the_label_command_shows_and_takes_it():
    text = CliRunner().invoke(main, ["label", "--help"]).output
    assert "[default: b3lyp]" in text and "[default: 6-31g(2df,p)]" in text
    config = load_config(LabelConfig, {"level": {"method": "hf"}}, ["level.basis=sto-3g"],
                         section="label", **{"level.max_atoms": 9})
    assert (config.level.tag, config.level.max_atoms) == ("hf/sto-3g/df", 9)
