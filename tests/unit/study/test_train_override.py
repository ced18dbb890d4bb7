"""The study's ``train:`` section is an override of FinetuneConfig, not a second copy of its
fields: one declaration (type, help, validation), the study's own defaults on top."""

import dataclasses

import pytest

from molpre.config import ConfigError, field_types, from_dict, override_of, setting
from molpre.study.config import TRAIN_DEFAULTS, TRAIN_FIELDS, StudyConfig, TrainSpec
from molpre.study.plan import Child, finetune_config
from molpre.train.finetune_config import FinetuneConfig


def test_every_overridden_field_is_declared_once_in_finetune_config():
    ours, theirs = field_types(TrainSpec), field_types(FinetuneConfig)
    base = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
    for field in dataclasses.fields(TrainSpec):
        if field.name in TRAIN_FIELDS:
            assert ours[field.name] == theirs[field.name]
            assert field.metadata == base[field.name].metadata  # the same help and flags
        else:  # what a study adds is not a finetune field
            assert field.name not in base and field.name in ("val_min", "fail_margin")


def test_the_study_defaults_hold_and_the_rest_are_finetunes():
    spec, plain = TrainSpec(), FinetuneConfig()
    assert (spec.lr, spec.epochs, spec.patience, spec.max_minutes) == (5e-3, 300, 40, 10.0)
    for name in TRAIN_FIELDS:
        if name not in TRAIN_DEFAULTS:
            assert getattr(spec, name) == getattr(plain, name), name


@pytest.mark.parametrize(("train", "message"), [
    ({"lr": 0}, "train: lr must be > 0"),
    ({"dtype": "float16"}, "train: dtype 'float16'"),
    ({"preset": "huge"}, "train: preset 'huge'"),
    ({"patience": 0}, "train: patience must be >= 1"),
    ({"val_fraction": 1.5}, "train: val_fraction must be in (0, 1)"),
    ({"ema_decay": 1.0}, "train: ema_decay"),
    ({"val_min": 0}, "train: val_min must be >= 1"),
    ({"lrr": 1}, "unknown config key 'train.lrr'; did you mean 'train.lr'"),
])
def test_finetunes_own_checks_name_the_study_key(train, message):
    with pytest.raises(ConfigError) as err:
        from_dict(StudyConfig, {"data": "x", "train": train})
    assert message in str(err.value)


def test_a_child_gets_the_overrides_and_its_own_fields(tmp_path):
    config = from_dict(StudyConfig, {"data": "labels.db",
                                     "train": {"lr": 1e-2, "epochs": 7, "compile": True}})
    child = Child(arm="scratch", encoder=None, mode="scratch", budget=40, seed=2)
    ft = finetune_config(config, child, tmp_path / "test_ids.txt", None, tmp_path, "exp")
    assert (ft.lr, ft.epochs, ft.patience, ft.seed, ft.budget) == (1e-2, 7, 40, 2, 40)
    assert ft.compile and not from_dict(StudyConfig, {"data": "x"}).train.compile
    assert ft.val_fraction == 0.5  # max(0.1, val_min 20 / 40)


def test_refit_atomref_reaches_every_child_and_not_an_encoders_own_train(tmp_path):
    config = from_dict(StudyConfig, {"data": "labels.db", "train": {"refit_atomref": True}})
    child = Child(arm="scratch", encoder=None, mode="scratch", budget=40, seed=0)
    assert finetune_config(config, child, tmp_path / "ids.txt", None, tmp_path, "e").refit_atomref
    assert not from_dict(StudyConfig, {"data": "x"}).train.refit_atomref
    with pytest.raises(ConfigError, match="refit_atomref"):
        from_dict(StudyConfig, {"data": "x", "encoders": [
            {"name": "a", "path": "enc", "train": {"refit_atomref": True}}]})


def test_committee_folds_reach_every_child_and_not_an_encoders_own_train(tmp_path):
    config = from_dict(StudyConfig, {"data": "labels.db",
                                     "train": {"ensemble": 3, "committee_folds": True}})
    child = Child(arm="scratch", encoder=None, mode="scratch", budget=40, seed=0)
    assert finetune_config(config, child, tmp_path / "ids.txt", None, tmp_path, "e").committee_folds
    with pytest.raises(ConfigError, match="ensemble >= 2"):
        from_dict(StudyConfig, {"data": "x", "train": {"committee_folds": True}})
    with pytest.raises(ConfigError, match="committee_folds"):
        from_dict(StudyConfig, {"data": "x", "train": {"ensemble": 3}, "encoders": [
            {"name": "a", "path": "enc", "train": {"committee_folds": True}}]})


def test_override_of_builds_any_section():
    @dataclasses.dataclass(frozen=True)
    class Base:
        a: int = setting(1, help="A.")
        b: str = "x"
        c: list[int] = dataclasses.field(default_factory=lambda: [1])

        def __post_init__(self):
            if self.a < 0:
                raise ConfigError("a must be >= 0")

    Section = override_of(Base, ("a", "c"), name="Section", doc="d", defaults={"a": 5})
    assert Section().a == 5 and Section().c == [1] and Section().apply(Base(b="y")) == Base(5, "y", [1])
    with pytest.raises(ConfigError, match="s: a must be >= 0"):
        from_dict(Section, {"a": -1}, prefix="s")
    with pytest.raises(ConfigError, match="unknown config key 'Base.z'"):
        override_of(Base, ("z",), name="Bad", doc="")


def test_an_encoder_trains_its_arms_and_its_control_its_own_way(tmp_path):
    """encoders[].train: the encoder's arms and its random-init control get its settings,
    scratch keeps the study's, and the split (val_fraction) is the same for every arm."""
    config = from_dict(StudyConfig, {"data": "labels.db", "train": {"lr": 5e-3, "patience": 40},
                                     "encoders": [{"name": "x", "path": "enc.pt",
                                                   "train": {"lr": 1e-3, "patience": 80}}]})
    kids = {"x:full": Child("x:full", 100, 0, mode="full", encoder="x"),
            "x:control-full": Child("x:control-full", 100, 0, mode="full", encoder="x", control=True),
            "scratch": Child("scratch", 100, 0, mode="scratch")}
    got = {arm: finetune_config(config, kid, tmp_path / "ids.txt",
                                None if arm == "scratch" else "enc.pt", tmp_path, "exp")
           for arm, kid in kids.items()}
    assert (got["x:full"].lr, got["x:full"].patience) == (1e-3, 80)
    assert (got["x:control-full"].lr, got["x:control-full"].patience) == (1e-3, 80)
    assert (got["scratch"].lr, got["scratch"].patience) == (5e-3, 40)
    assert len({ft.val_fraction for ft in got.values()}) == 1


@pytest.mark.parametrize(("encoders", "message"), [
    ([{"name": "x", "path": "p", "train": {"lr": -1}}], "x.train {'lr': -1.0}: lr must be > 0"),
    ([{"name": "x", "path": "p", "train": {"val_fraction": 0.3}}], "cannot differ per encoder"),
    ([{"name": "x", "path": "p", "train": {"lr": "fast"}}], "encoders.x.train.lr: expected float"),
    ([{"name": "a", "path": "p", "seed": 1},
      {"name": "b", "path": "q", "seed": 1, "control_of": "a", "train": {"lr": 1e-3}}],
     "train settings differ"),
])
def test_an_encoders_train_settings_are_checked(encoders, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        from_dict(StudyConfig, {"data": "x", "encoders": encoders})


def test_an_encoders_train_values_are_read_as_the_studys_are(tmp_path):
    """``lr: 5e-4`` is a string to YAML (no dot); in encoders[].train, as in train:, it is
    the float, from a file and from --set alike."""
    path = tmp_path / "study.yaml"
    path.write_text("data: x\ntrain: {lr: 5e-3}\nencoders:\n"
                    "  - {name: x, path: p, train: {lr: 5e-4, epochs: '30'}}\n")
    from molpre.study.config import load_study_config

    config = load_study_config(path)
    assert config.encoders[0].train == {"lr": 5e-4, "epochs": 30}
    config = load_study_config(path, ["encoders[0].train.lr=2e-3"])
    assert config.encoders[0].train["lr"] == 2e-3
