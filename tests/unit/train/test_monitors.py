"""Collapse watch and probe proxy: real encoders, real Lightning, real MLflow store."""

from __future__ import annotations

import lightning as L
import mlflow
import numpy as np
import torch
from ase.build import molecule

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.presets import build_encoder
from molpre.train import monitors
from molpre.train.callbacks import CollapseWatch

NAMES = ["H2O", "CH4", "NH3", "C2H6", "CH3OH", "C2H4", "HCOOH", "CH3CH2OH", "C6H6", "CH3CN",
         "H2CO", "CH3COOH", "C3H8", "CH3NO2", "HCN", "CH3CHO"]


def two_views() -> dict[str, torch.Tensor]:
    """16 molecules, each twice (second view slightly perturbed), view-major."""
    gen = torch.Generator().manual_seed(0)
    first = [atoms_to_sample(molecule(n), 4.5) for n in NAMES]
    second = [{**s, keys.POSITIONS: s[keys.POSITIONS] + 0.05 * torch.randn(s[keys.POSITIONS].shape, generator=gen)}
              for s in first]
    return collate(first + second)


class ConstantEncoder(torch.nn.Module):
    """A collapsed encoder: the same embedding whatever the molecule."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Parameter(torch.ones(64))

    def forward(self, batch):
        out = dict(batch)
        out[keys.GRAPH_EMBEDDING] = self.embedding.expand(int(batch[keys.NUM_GRAPHS]), 64)
        return out


def test_statistics_on_known_embeddings():
    eye = torch.eye(8)
    assert abs(monitors.effective_rank(eye) - 7) < 1e-6  # centring removes one direction
    assert monitors.effective_rank(torch.ones(8, 4)) == 0.0
    assert monitors.uniformity(torch.ones(8, 4)) == 0.0
    assert monitors.alignment(eye, eye) == 0.0
    assert monitors.embedding_std(torch.ones(8, 4)) == 0.0
    assert monitors.uniformity(torch.randn(256, 32)) < -3.0


def test_collapse_thresholds_flag_constant_not_healthy_encoder():
    torch.manual_seed(0)
    batch, thresholds = two_views(), monitors.CollapseThresholds()
    with torch.no_grad():
        healthy = build_encoder("small")(batch)[keys.GRAPH_EMBEDDING]
        constant = ConstantEncoder()(batch)[keys.GRAPH_EMBEDDING]
    stats = monitors.collapse_stats(*healthy.chunk(2))
    assert thresholds.check(stats) == [], stats
    assert stats["alignment"] < 0.5
    reasons = thresholds.check(monitors.collapse_stats(*constant.chunk(2)))
    assert len(reasons) == 3


class Holder(L.LightningModule):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def training_step(self, batch, batch_idx):
        return self.encoder(batch)[keys.GRAPH_EMBEDDING].sum() * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit_with_watch(encoder, mlflow_uri, tmp_path):
    from lightning.pytorch.loggers import MLFlowLogger

    logger = MLFlowLogger(experiment_name="t", tracking_uri=mlflow_uri)
    watch = CollapseWatch(two_views(), 2, monitors.CollapseThresholds(), every_n_steps=1, stop=True)
    trainer = L.Trainer(max_steps=5, logger=logger, callbacks=[watch], enable_progress_bar=False,
                        enable_checkpointing=False, default_root_dir=tmp_path,
                        enable_model_summary=False)
    data = [collate([atoms_to_sample(molecule("H2O"), 4.5)])] * 5
    trainer.fit(Holder(encoder), train_dataloaders=torch.utils.data.DataLoader(
        data, batch_size=None))
    return trainer, mlflow.MlflowClient(mlflow_uri).get_run(logger.run_id)


def test_watch_tags_and_stops_a_collapsed_run(mlflow_uri, tmp_path):
    trainer, run = fit_with_watch(ConstantEncoder(), mlflow_uri, tmp_path)
    assert run.data.tags["collapse"] == "suspected"
    assert "effective rank" in run.data.tags["collapse.reason"]
    assert trainer.global_step < 5  # stop_on_collapse ended it early
    trainer, run = fit_with_watch(build_encoder("small"), mlflow_uri, tmp_path)
    assert "collapse" not in run.data.tags and trainer.global_step == 5
    assert run.data.metrics["collapse/effective_rank"] > 1.5


def test_ridge_probe_tracks_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    y = x @ rng.normal(size=16)
    assert monitors.ridge_probe(x, y + 0.01 * rng.normal(size=200)) < 0.05
    assert monitors.ridge_probe(x, rng.normal(size=200) * 5) > 2.0


def test_shortcut_detector_fires_when_loss_falls_and_probe_stalls():
    detector = monitors.ShortcutDetector(window=3)
    assert [detector.update(1.0 / (i + 1), 5.0) for i in range(3)] == [None] * 3
    assert detector.update(0.2, 5.0) is not None
    healthy = monitors.ShortcutDetector(window=3)
    assert all(healthy.update(1.0 / (i + 1), 5.0 / (i + 1)) is None for i in range(8))


def test_extensive_probe_features_recover_an_atomref_target():
    """Element counts in the probe features make a purely additive energy exactly learnable."""
    from ase import Atoms

    from molpre.data.graph import atoms_to_sample, collate
    from molpre.models.presets import build_encoder
    from molpre.train.callbacks import composition, probe_features

    rng = np.random.default_rng(0)
    ref = {1: -13.6, 6: -1030.0, 7: -1480.0, 8: -2040.0}
    mols, y = [], []
    for _ in range(60):
        zs = list(rng.choice([1, 6, 7, 8], size=int(rng.integers(3, 9))))
        mols.append(Atoms(numbers=zs, positions=rng.normal(scale=1.5, size=(len(zs), 3))))
        y.append(sum(ref[z] for z in zs))
    encoder = build_encoder("small")
    batches = [collate([atoms_to_sample(a, encoder.config.cutoff) for a in mols[i:i + 16]])
               for i in range(0, 60, 16)]
    counts = composition(batches)
    assert counts.shape == (60, 119) and counts.sum() == sum(len(a) for a in mols)
    features = probe_features(encoder, batches)
    assert features.shape == (60, encoder.feature_dim + 119)
    assert monitors.ridge_probe(counts, np.asarray(y)) < 0.5
