"""Ridge and L1 probes of frozen embeddings: the sparse probe finds the few dimensions that
matter (synthetic), and a real encoder is probed on a tiny QM9 split (cached on rerun)."""

from __future__ import annotations

from types import SimpleNamespace

import ase.io
import numpy as np

from molpre.data.datasets import load_labeled
from molpre.models.encoder import save_encoder
from molpre.models.presets import resolve_config
from molpre.study.encoders import initial_encoder
from molpre.study.probes import embed_molecules, fit_probes, probe_encoders
from molpre.units import EV_TO_KCAL_PER_MOL

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"


def test_sparse_probe_keeps_the_informative_dimensions():
    rng = np.random.default_rng(0)
    n, dims = 300, 40
    features = rng.normal(size=(n, dims))
    counts = np.zeros((n, 119))
    counts[:, 1] = rng.integers(2, 12, n)
    counts[:, 6] = rng.integers(1, 8, n)
    y = counts[:, 1] * -13.6 + counts[:, 6] * -1030.0 + 0.3 * features[:, [3, 17, 29]].sum(1)
    y += rng.normal(scale=0.05, size=n)
    result = fit_probes(features, counts, y, np.arange(200), np.arange(200, n))
    assert result["dims"] == dims and 3 <= result["lasso_nonzero_dims"] <= 6
    assert {3, 17, 29} <= set(result["lasso_dims_kept"])
    assert result["lasso_test_mae_mev"] < 60 < 0.2 * result["atomref_test_mae_mev"]
    assert result["ridge_test_mae_mev"] < 0.2 * result["atomref_test_mae_mev"]
    assert result["n_train"] == 200 and result["n_test"] == 100
    assert np.isclose(result["lasso_test_mae_kcal"],
                      result["lasso_test_mae_mev"] / 1000 * EV_TO_KCAL_PER_MOL)


def test_probes_of_a_real_encoder_and_its_control_on_a_tiny_split(tmp_path):
    atoms = ase.io.read(QM9, index=":60", format="extxyz")
    ase.io.write(tmp_path / "tiny.extxyz", atoms, format="extxyz")
    data = load_labeled(str(tmp_path / "tiny.extxyz"), "u0_atom", "kcal/mol")
    save_encoder(initial_encoder(resolve_config("small"), 0), tmp_path / "enc.pt")
    save_encoder(initial_encoder(resolve_config("small"), 1), tmp_path / "init.pt")
    features, counts = embed_molecules(tmp_path / "enc.pt", atoms[:5])
    assert features.shape[0] == counts.shape[0] == 5 and counts.shape[1] == 119
    assert np.array_equal(counts[0, [1, 6, 7, 8, 9]],
                          [np.sum(atoms[0].numbers == z) for z in (1, 6, 7, 8, 9)])
    enc = SimpleNamespace(encoder_path=tmp_path / "enc.pt", control_path=tmp_path / "init.pt")
    test_rows = np.arange(40, 60)
    results = probe_encoders({"pre": enc}, data, test_rows, tmp_path / "out", max_train=30, folds=3)
    assert set(results) == {"pre", "pre:init"}
    for r in results.values():
        assert r["n_train"] == 30 and r["n_test"] == 20 and 0 <= r["lasso_nonzero_dims"] <= r["dims"]
        assert all(np.isfinite(r[k]) for k in ("ridge_test_mae_kcal", "lasso_test_mae_kcal"))
    assert results["pre"] != results["pre:init"]
    cache = tmp_path / "out" / "probes" / "pre.json"
    stamp = cache.stat().st_mtime_ns
    assert probe_encoders({"pre": enc}, data, test_rows, tmp_path / "out", max_train=30,
                          folds=3) == results
    assert cache.stat().st_mtime_ns == stamp  # reused, not recomputed
