"""Baselines a user would pick instead, on the study's own splits.

* the prior of the target's kind (molpre.targets.kinds), fitted on the budget's labels:
  ``linear``, the per-element fit (value = sum of per-element reference values, least
  squares) for extensive targets; ``mean``, the training mean, for any target;
* ``krr``: kernel ridge regression on FCHL19 (qmllib's representation, the optional extra
  ``molpre[krr]``) of the residual after that prior, with qmllib's local Gaussian
  kernel ``K(A, B) = sum_{i in A, j in B, Z_i = Z_j} exp(-|x_i - x_j|^2 / (2 sigma^2))``
  computed in vectorised numpy (identical numbers to qmllib's ``get_local_kernel``, far
  faster here). sigma and lambda are chosen by k-fold cross-validation inside the budget,
  never on the test set.

Labels are ``[n]`` scalars in molpre units (a vector target's magnitudes); returned errors
are absolute errors per test molecule [n_test] in the same unit, NaN for a test molecule
with an element the training labels never show (as finetuning skips them). ``fit_prior``
``(numbers, labels) -> Prior`` is a kind's :meth:`~molpre.targets.kinds.Kind.prior`
(default: the per-element fit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from molpre.targets import get_target
from molpre.targets.kinds import Prior

ELEMENTS = (1, 6, 7, 8, 9)
FitPrior = Callable[[Sequence[np.ndarray], np.ndarray], Prior]
PER_ELEMENT: FitPrior = get_target("energy").kind.prior  # the per-element fit


def prior_baseline(numbers: Sequence[np.ndarray], labels: np.ndarray, train: np.ndarray,
                   test: np.ndarray, fit_prior: FitPrior = PER_ELEMENT) -> np.ndarray:
    """Absolute test errors [n_test] of the prior fitted on rows ``train``."""
    prior = fit_prior([numbers[i] for i in train], labels[train])
    return np.abs(prior.predict([numbers[i] for i in test]) - labels[test])


def linear_baseline(numbers: Sequence[np.ndarray], energy: np.ndarray, train: np.ndarray,
                    test: np.ndarray) -> np.ndarray:
    """Absolute test errors [n_test] (eV) of the per-element fit on rows ``train``."""
    return prior_baseline(numbers, energy, train, test, PER_ELEMENT)


def fchl19(numbers: Sequence[np.ndarray], positions: Sequence[np.ndarray],
           elements: Sequence[int] = ELEMENTS) -> list[np.ndarray]:
    """FCHL19 atomic representations, one [n_atoms, D] array per molecule (qmllib)."""
    try:
        from qmllib.representations import generate_fchl19
    except ImportError as err:
        raise ImportError("the krr baseline needs qmllib: pip install 'molpre[krr]'") from err
    return [np.asarray(generate_fchl19(np.asarray(z), np.asarray(p), elements=list(elements)))
            for z, p in zip(numbers, positions, strict=True)]


@dataclass
class AtomTable:
    """All atoms of a set of molecules: features [n_atoms, D], element [n_atoms], molecule index."""

    x: np.ndarray
    z: np.ndarray
    mol: np.ndarray
    n_mol: int

    @classmethod
    def build(cls, reps: Sequence[np.ndarray], numbers: Sequence[np.ndarray]) -> AtomTable:
        mol = np.concatenate([np.full(len(z), i) for i, z in enumerate(numbers)])
        return cls(np.concatenate(reps), np.concatenate(numbers), mol, len(numbers))


def _onehot(mol: np.ndarray, n_mol: int):
    """Sparse atom -> molecule indicator [n_atoms, n_mol]."""
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(mol)), (np.arange(len(mol)), mol)), shape=(len(mol), n_mol))


def local_kernels(a: AtomTable, b: AtomTable, sigmas: Sequence[float],
                  chunk: int = 1024) -> np.ndarray:
    """Local Gaussian kernels [n_sigma, a.n_mol, b.n_mol] between two molecule sets.

    Same-element atom pairs only, in chunks of ``chunk`` atoms of ``a`` (peak memory about
    2 x chunk x n_atoms(b) floats); atom sums by sparse indicator products.
    """
    out = np.zeros((len(sigmas), a.n_mol, b.n_mol))
    inv = np.array([1.0 / (2.0 * s * s) for s in sigmas])
    for element in np.intersect1d(a.z, b.z):
        ia, ib = np.flatnonzero(a.z == element), np.flatnonzero(b.z == element)
        xb = b.x[ib]
        nb = (xb * xb).sum(1)
        to_b = _onehot(b.mol[ib], b.n_mol).T.tocsr()  # [b.n_mol, atoms of b]
        for start in range(0, len(ia), chunk):
            rows = ia[start:start + chunk]
            xa = a.x[rows]
            d2 = np.maximum((xa * xa).sum(1)[:, None] + nb[None, :] - 2.0 * xa @ xb.T, 0.0)
            to_a = _onehot(a.mol[rows], a.n_mol).T.tocsr()  # [a.n_mol, rows]
            for k, g in enumerate(inv):
                per_b = (to_b @ np.exp(-g * d2).T).T  # [rows, b.n_mol]
                out[k] += to_a @ per_b
    return out


def _solve(k: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    from scipy.linalg import cho_factor, cho_solve

    return cho_solve(cho_factor(k + lam * np.eye(len(k))), y)


def _residual(numbers, labels, fit_rows, rows, fit_prior: FitPrior):
    prior = fit_prior([numbers[i] for i in fit_rows], labels[fit_rows])
    return labels[rows] - prior.predict([numbers[i] for i in rows]), prior


def cv_choice(kernel: np.ndarray, numbers, labels, train: np.ndarray, sigmas, lambdas,
              folds: int, seed: int, fit_prior: FitPrior = PER_ELEMENT
              ) -> tuple[int, float, float]:
    """(sigma index, lambda, CV MAE in the labels' unit) minimising k-fold MAE inside
    ``train`` only.

    ``kernel`` [n_sigma, n_all, n_all] over every molecule; only train x train is read.
    """
    order = np.random.default_rng(seed).permutation(len(train))
    parts = np.array_split(order, min(folds, len(train)))
    best = (0, lambdas[0], np.inf)
    for s in range(len(sigmas)):
        for lam in lambdas:
            errs = []
            for part in parts:
                fit = train[np.setdiff1d(order, part)]
                held = train[part]
                y, prior = _residual(numbers, labels, fit, fit, fit_prior)
                try:
                    alpha = _solve(kernel[s][np.ix_(fit, fit)], y, lam)
                except np.linalg.LinAlgError:
                    errs = [np.inf]
                    break
                pred = kernel[s][np.ix_(held, fit)] @ alpha + prior.predict(
                    [numbers[i] for i in held])
                errs.append(np.abs(pred - labels[held]))
            flat = np.concatenate(errs)
            flat = flat[np.isfinite(flat)]  # held-out molecules with an element unseen in the fold
            mae = float(flat.mean()) if flat.size else np.inf
            if mae < best[2]:
                best = (s, lam, mae)
    return best


def krr_baseline(kernel: np.ndarray, numbers, labels, train: np.ndarray, test: np.ndarray,
                 sigmas, lambdas, folds: int = 5, seed: int = 0,
                 fit_prior: FitPrior = PER_ELEMENT) -> tuple[np.ndarray, dict]:
    """Absolute test errors [n_test] of KRR (on the residual of ``fit_prior``) with
    CV-chosen (sigma, lambda), and the choice (``cv_mae_ev``: CV MAE in the labels' unit)."""
    s, lam, cv_mae = cv_choice(kernel, numbers, labels, train, sigmas, lambdas, folds, seed,
                               fit_prior)
    y, prior = _residual(numbers, labels, train, train, fit_prior)
    alpha = _solve(kernel[s][np.ix_(train, train)], y, lam)
    pred = kernel[s][np.ix_(test, train)] @ alpha + prior.predict([numbers[i] for i in test])
    return np.abs(pred - labels[test]), {"sigma": float(sigmas[s]), "lambda": float(lam),
                                         "cv_mae_ev": cv_mae}
