"""Linear and sparse probes of frozen encoder embeddings on a study's own split.

For each encoder (and its random-init control, the same architecture at the pretraining
run's step-0 weights) the frozen encoder embeds every molecule; the features are those of
the pretraining probe (molpre.train.callbacks.probe_features): the summed atom features
(mean embedding x atom count, energies being extensive) [n, F] next to the element counts
[n, E]. Labels are first reduced by the baseline of the target's kind fitted on the
training pool (molpre.targets.kinds: the per-element least-squares fit every energy model
starts from, the training mean of an intensive target), then two probes fit the residual on
the standardised features of the training pool (every non-test molecule, at most
``probes.max_train``) and are scored on the test set:

* ``ridge``: RidgeCV (efficient leave-one-out over a grid of strengths);
* ``lasso``: L1 with its strength by ``probes.folds``-fold CV on the training pool (LassoCV,
  one-standard-error rule) and the number of embedding dimensions it keeps (non-zero
  coefficients among the F summed features): how many directions of the embedding carry
  what the probe uses.

The penalties never see the test set. MAEs are reported in every report unit of the
target (``<probe>_test_mae_<unit>``: kcal/mol and meV for energies, meV for the gap), the
baseline's as ``atomref_test_mae_<unit>``; ``unit_slug`` names the headline unit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from molpre.targets.spec import SLUGS

log = logging.getLogger(__name__)

RIDGE_ALPHAS = tuple(np.logspace(-4, 4, 17))


def embed_molecules(encoder_path: str | Path, atoms: list, batch_size: int = 64
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(summed atom features [n, F], element counts [n, 119]) of ``atoms`` by the frozen encoder."""
    import torch

    from molpre.data.graph import atoms_to_sample, collate
    from molpre.models.encoder import load_encoder
    from molpre.train.callbacks import composition, probe_features

    encoder = load_encoder(encoder_path)
    cutoff = float(encoder.config.cutoff)
    feats = []
    counts = []
    with torch.no_grad():
        for start in range(0, len(atoms), batch_size):
            batch = collate([atoms_to_sample(a, cutoff) for a in atoms[start:start + batch_size]])
            x = probe_features(encoder, [batch])
            c = composition([batch])
            feats.append(x[:, : x.shape[1] - c.shape[1]])
            counts.append(c)
    return np.concatenate(feats), np.concatenate(counts)


def _atomref_residual(counts: np.ndarray, y: np.ndarray, train: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(residual [n] eV after the per-element fit on ``train``, rows the fit can predict)."""
    seen = counts[train].sum(0) > 0
    weights, *_ = np.linalg.lstsq(counts[train][:, seen], y[train], rcond=None)
    known = counts[:, ~seen].sum(1) == 0  # molecules without an element unseen in training
    return y - counts[:, seen] @ weights, known


def _lasso_grid(x: np.ndarray, y: np.ndarray, n: int = 40) -> np.ndarray:
    """L1 strengths from the smallest that keeps no feature down 1000-fold (standardised x)."""
    scale = x.std(0)
    z = (x - x.mean(0)) / np.where(scale > 0, scale, 1.0)
    top = float(np.abs(z.T @ (y - y.mean())).max()) / len(y)
    return np.geomspace(max(top, 1e-12), max(top, 1e-12) * 1e-3, n)


def one_se_alpha(cv) -> float:
    """The largest L1 strength whose CV error is within one standard error of the best
    (the "one-standard-error rule": the sparsest model the folds cannot tell from the best;
    the minimum-error strength keeps noise dimensions with tiny weights)."""
    mse = np.asarray(cv.mse_path_)  # [n_alphas, folds]
    mean = mse.mean(1)
    best = int(np.argmin(mean))
    limit = mean[best] + mse[best].std(ddof=1) / np.sqrt(mse.shape[1])
    return float(np.max(np.asarray(cv.alphas_)[mean <= limit]))


def fit_probes(features: np.ndarray, counts: np.ndarray, y: np.ndarray, train: np.ndarray,
               test: np.ndarray, folds: int = 5, seed: int = 0, spec=None,
               baseline: np.ndarray | None = None) -> dict:
    """Ridge and L1 probes of ``y`` [n] (molpre units of ``spec``, default the energy) on
    ``features`` [n, F] + ``counts`` [n, E].

    ``train``/``test``: row indices. ``baseline`` [n]: the predictions the probes start from
    (NaN where it cannot predict; default the per-element fit on ``train``). Returns test
    MAEs of the baseline alone, ridge and lasso in every report unit of ``spec``, the chosen
    penalties and ``lasso_nonzero_dims`` (of ``dims``).
    """
    from molpre.targets import get_target

    spec = spec or get_target("energy")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso, LassoCV, RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if baseline is None:
        residual, known = _atomref_residual(counts, y, train)
    else:
        residual, known = y - baseline, np.isfinite(baseline)
    test = test[known[test]]
    present = counts[train].sum(0) > 0
    x = np.concatenate([features, counts[:, present]], axis=1)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    ridge.fit(x[train], residual[train])
    lasso = make_pipeline(StandardScaler(), LassoCV(
        alphas=_lasso_grid(x[train], residual[train]), max_iter=20000, tol=1e-4,
        cv=KFold(min(folds, len(train)), shuffle=True, random_state=seed), random_state=seed))
    with warnings.catch_warnings():  # small strengths on collinear features: the CV path
        warnings.simplefilter("ignore", ConvergenceWarning)  # only ranks them
        lasso.fit(x[train], residual[train])
    alpha = one_se_alpha(lasso[-1])
    lasso = make_pipeline(StandardScaler(), Lasso(alpha=alpha, max_iter=20000, tol=1e-4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        lasso.fit(x[train], residual[train])
    coef = lasso[-1].coef_[: features.shape[1]]
    out = {"n_train": int(len(train)), "n_test": int(len(test)), "dims": int(features.shape[1]),
           "lasso_nonzero_dims": int(np.count_nonzero(coef)),
           "lasso_dims_kept": np.flatnonzero(coef).tolist(),
           "lasso_converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
           "ridge_alpha": float(ridge[-1].alpha_), "lasso_alpha": alpha,
           "unit_slug": SLUGS[spec.headline[0]]}
    for name, pred in (("atomref", np.zeros(len(test))), ("ridge", ridge.predict(x[test])),
                       ("lasso", lasso.predict(x[test]))):
        mae = float(np.mean(np.abs(pred - residual[test])))
        for unit, factor in spec.report_units:
            out[f"{name}_test_mae_{SLUGS[unit]}"] = mae * factor
    return out


def _digest(*parts: str | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        path = Path(part)
        h.update(path.read_bytes() if path.is_file() else str(part).encode())
    return h.hexdigest()[:16]


def probe_encoders(encoders: dict, data, test_rows: np.ndarray, out: Path,
                   max_train: int | None = None, folds: int = 5, spec=None) -> dict[str, dict]:
    """``{label: probe result}`` for each prepared encoder (label = its name) and its control
    (``<name>:init``), cached in OUT/probes/ by encoder file, split, target and settings.
    ``spec``: the study's target (default the energy), reduced by its kind's baseline."""
    from molpre.targets import get_target

    spec = spec or get_target("energy")
    test = np.asarray(sorted(set(int(r) for r in test_rows)))
    pool = np.setdiff1d(np.arange(len(data)), test)
    pool = pool[np.random.default_rng(0).permutation(len(pool))][:max_train]
    y = spec.kind.scalar(data.labels[spec.name])
    numbers = [a.numbers for a in data.atoms]
    baseline = spec.kind.prior([numbers[r] for r in pool], y[pool]).predict(numbers)
    results = {}
    for name, enc in encoders.items():
        for label, path in ((name, enc.encoder_path), (f"{name}:init", enc.control_path)):
            if path is None:
                continue
            cache = out / "probes" / f"{label.replace(':', '-')}.json"
            key = _digest(path, data.sha256 or data.source, json.dumps(
                [test.tolist()[:50], len(test), len(pool), folds, spec.name]))
            if cache.is_file() and json.loads(cache.read_text()).get("key") == key:
                results[label] = json.loads(cache.read_text())["result"]
                continue
            rows = np.concatenate([pool, test])
            features, counts = embed_molecules(path, [data.atoms[r] for r in rows])
            local = np.arange(len(rows))
            result = fit_probes(features, counts, y[rows], local[:len(pool)], local[len(pool):],
                                folds, spec=spec, baseline=baseline[rows])
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "result": result}, indent=1))
            slug = result["unit_slug"]
            log.info("probe %s: ridge %.4g, L1 %.4g %s (%d of %d dims), baseline %.4g",
                        label, result[f"ridge_test_mae_{slug}"], result[f"lasso_test_mae_{slug}"],
                        spec.headline[0], result["lasso_nonzero_dims"], result["dims"],
                        result[f"atomref_test_mae_{slug}"])
            results[label] = result
    return results
