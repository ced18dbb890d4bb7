"""Baselines: the numpy local kernel equals qmllib's, KRR beats the per-element fit."""

import ase.io
import numpy as np
import pytest

from molpre.study import baselines as bl

qmllib = pytest.importorskip("qmllib")
QM9 = "../shared/data/qm9_sample3000.extxyz.gz"


@pytest.fixture(scope="module")
def qm9():
    frames = ase.io.read(QM9, index=":160", format="extxyz")
    numbers = [a.numbers for a in frames]
    energy = np.array([a.info["u0_atom"] for a in frames]) * 0.0433641
    reps = bl.fchl19(numbers, [a.positions for a in frames])
    return numbers, energy, reps


def test_numpy_kernel_matches_qmllib(qm9):
    from qmllib.kernels import get_local_kernel

    numbers, _, reps = qm9
    a = bl.AtomTable.build(reps[:6], numbers[:6])
    b = bl.AtomTable.build(reps[6:10], numbers[6:10])
    ours = bl.local_kernels(a, b, [4.0], chunk=7)[0]
    pad = max(len(z) for z in numbers[:10])
    x = np.zeros((10, pad, reps[0].shape[1]))
    q = []
    for i in range(10):
        x[i, :len(numbers[i])] = reps[i]
        q.append(np.asarray(numbers[i]))
    ref = get_local_kernel(x[:6], x[6:10], q[:6], q[6:10], 4.0)
    assert np.allclose(ours, ref.T if ref.shape != ours.shape else ref, rtol=1e-8)


def test_krr_beats_linear_with_cv_inside_the_budget(qm9):
    numbers, energy, reps = qm9
    table = bl.AtomTable.build(reps, numbers)
    sigmas, lambdas = [2.0, 8.0, 32.0], [1e-8, 1e-4]
    kernel = bl.local_kernels(table, table, sigmas)
    train, test = np.arange(100), np.arange(100, 160)
    lin = bl.linear_baseline(numbers, energy, train, test).mean()
    errs, choice = bl.krr_baseline(kernel, numbers, energy, train, test, sigmas, lambdas, folds=4)
    assert errs.mean() < 0.8 * lin, (errs.mean(), lin)
    assert choice["sigma"] in sigmas and np.isfinite(choice["cv_mae_ev"])


def test_linear_baseline_skips_elements_unseen_in_training():
    numbers = [np.array([6, 1, 1, 1, 1]), np.array([6, 6, 1, 1, 1, 1, 1, 1]),
               np.array([6, 1, 1, 1, 9])]
    energy = np.array([-1.0, -2.0, -3.0])
    errs = bl.linear_baseline(numbers, energy, np.array([0, 1]), np.array([0, 2]))
    assert np.isfinite(errs[0]) and np.isnan(errs[1])
