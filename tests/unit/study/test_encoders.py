"""The control's weights are the pretraining run's step-0 weights (checked on a real run)."""

from __future__ import annotations

import pytest
import torch

from molpre.chem import records_from_smiles
from molpre.data.shards import build_shards
from molpre.models.encoder import load_encoder
from molpre.study.config import EncoderSpec, StudyConfig
from molpre.study.encoders import (
    PreparedEncoder,
    initial_encoder,
    prepare_encoder,
    relative_change,
    shared_start_warnings,
)
from molpre.train.pretrain import pretrain

SMILES = ["CCCCO", "CCOCC", "NCCCN", "OCCCO", "CCCC(=O)O", "CCNCC", "CC(C)CO", "CCCCN"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    build_shards(records_from_smiles(SMILES), tmp / "shards", conformers=2, seed=1,
                 shard_size=8, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        # one step at a negligible learning rate: the saved encoder is the step-0 encoder
        # to within ~1e-12 (AdamW moves each weight by about lr per step)
        result = pretrain({"output": str(tmp / "out"), "seed": 3,
                           "corpus": {"shards": str(tmp / "shards")},
                           "objectives": {"mask": {"weight": 1.0}, "contrast": {"weight": 1.0},
                                          "denoise": {"weight": 1.0},  # unlabeled shards
                                          "cheap_energy": {"weight": 0.0},
                                          "cheap_forces": {"weight": 0.0}},
                           "train": {"batch_size": 4, "lr": 1e-12, "max_steps": 1, "epochs": 1,
                                     "progress": False}, "monitor": {"molecules": 4}})
        yield tmp, result


def test_initial_encoder_equals_pretraining_step0(pretrained):
    _, result = pretrained
    saved = load_encoder(result.encoder_path)
    assert relative_change(initial_encoder(saved.config, 3), saved) < 1e-9
    assert relative_change(initial_encoder(saved.config, 4), saved) > 0.1


def test_prepare_encoder_reads_the_run_and_writes_the_control(pretrained, tmp_path):
    tmp, result = pretrained
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        enc = prepare_encoder(EncoderSpec(name="p", path=str(result.outdir)), tmp_path)
    assert enc.seed == 3 and enc.run_id == result.run_id
    assert enc.model_uri == f"runs:/{result.run_id}/checkpoints/encoder.pt"
    assert enc.corpus is None or enc.corpus.exists()
    control = load_encoder(enc.control_path)
    for a, b in zip(control.state_dict().values(), load_encoder(result.encoder_path).state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-8)


def test_a_control_that_starts_where_a_scratch_seed_does_is_flagged(tmp_path):
    def study(seed, **spec):
        config = StudyConfig(data="x.extxyz", target="u0_atom", budgets=[100, 1000],
                             encoders=[EncoderSpec(name="p", path="p.pt", **spec)])
        prepared = {"p": PreparedEncoder("p", tmp_path / "p.pt", None, None, None, seed, None)}
        return shared_start_warnings(config, prepared)

    (line,) = study(3, control=["full"])  # finetune seeds 0..4 (5 at N <= 300)
    assert "seed 3 is also a finetune seed (0..4)" in line and "seed >= 5" in line
    assert study(7, control=["full"]) == []
    assert study(3, control=[]) == []  # no control arm, no degenerate pair


def test_prepare_encoder_keeps_the_part_of_the_corpus_the_run_read(pretrained, tmp_path):
    """corpus.max_molecules reaches the audit: it counts mol_index < that, not the folder."""
    tmp, _ = pretrained
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        part = pretrain({"output": str(tmp_path / "part"), "seed": 3,
                         "corpus": {"shards": str(tmp / "shards"), "max_molecules": 4},
                         "objectives": {"denoise": {"weight": 1.0}, "mask": {"weight": 0.0},
                                        "contrast": {"weight": 0.0},
                                        "cheap_energy": {"weight": 0.0},
                                        "cheap_forces": {"weight": 0.0}},
                         "train": {"batch_size": 2, "max_steps": 1, "epochs": 1,
                                   "progress": False}, "monitor": {"molecules": 2}})
        enc = prepare_encoder(EncoderSpec(name="p", path=str(part.outdir)), tmp_path)
        whole = prepare_encoder(EncoderSpec(name="p", path=str(part.outdir),
                                            corpus=str(tmp / "shards")), tmp_path)
    assert enc.corpus == tmp / "shards" and enc.corpus_limit == 4
    assert whole.corpus_limit is None  # a corpus named in the study is audited whole
