"""Kernel ridge regression on sorted Coulomb matrices for a QM9 target (default: the gap).

The shared protocol: test = the first 1,000 of numpy.random.default_rng(0).permutation(3000)
of the QM9 sample; training = the N labelled rows ``molpre finetune --budget N`` draws with
the same seeds (its train + validation rows, via molpre.train.finetune.split_data). Labels are read through molpre.targets (gap:
Hartree -> eV). Descriptor: the sorted Coulomb matrix (Rupp et al. 2012; rows ordered by
norm, upper triangle, zero padded), Laplacian kernel; gamma and the ridge alpha by 5-fold
CV on the training set only. Prints a table of test MAE (eV and meV).

    python bench/gap_baseline.py [--target gap] [--n 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, KFold

from molpre.data.datasets import load_labeled
from molpre.train.finetune import split_data
from molpre.train.finetune_config import FinetuneConfig

DATA = "../shared/data/qm9_sample3000.extxyz.gz"


def sorted_coulomb_matrix(numbers: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Upper triangle ``[size*(size+1)/2]`` of the Coulomb matrix (Angstrom, row-norm sorted)."""
    z = np.asarray(numbers, dtype=float)
    dist = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    with np.errstate(divide="ignore"):
        cm = np.outer(z, z) / dist
    np.fill_diagonal(cm, 0.5 * z**2.4)
    order = np.argsort(-np.linalg.norm(cm, axis=1))
    padded = np.zeros((size, size))
    padded[: len(z), : len(z)] = cm[order][:, order]
    return padded[np.triu_indices(size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--target", default="gap")
    parser.add_argument("--n", type=int, default=1000, help="training molecules")
    args = parser.parse_args()
    data = load_labeled(args.data, args.target)
    labels = data.labels[data.targets[0]]
    config = FinetuneConfig(data=args.data, target=args.target, test_first=1000, split_seed=0,
                            budget=args.n, val_fraction=0.1, seed=0)
    split = split_data(config, data)
    test, train = np.asarray(split.test), np.concatenate([split.train, split.val])
    size = max(len(a) for a in data.atoms)
    x = np.stack([sorted_coulomb_matrix(a.numbers, a.positions, size) for a in data.atoms])
    start = time.perf_counter()
    grid = {"gamma": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "alpha": [1e-8, 1e-6, 1e-4, 1e-2]}
    search = GridSearchCV(KernelRidge(kernel="laplacian"), grid, cv=KFold(5, shuffle=True, random_state=0),
                          scoring="neg_mean_absolute_error")
    search.fit(x[train], labels[train])
    pred = search.predict(x[test])
    mae = float(np.abs(pred - labels[test]).mean())
    mean_mae = float(np.abs(labels[train].mean() - labels[test]).mean())
    print(f"| model | descriptor | N train | test MAE {args.target} (eV) | meV |")
    print("|---|---|---|---|---|")
    print(f"| training mean | - | {len(train)} | {mean_mae:.4f} | {mean_mae * 1000:.0f} |")
    print(f"| KRR, Laplacian kernel {search.best_params_} | sorted Coulomb matrix | {len(train)} | "
          f"{mae:.4f} | {mae * 1000:.0f} |")
    print(f"(fit with 5-fold CV in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
