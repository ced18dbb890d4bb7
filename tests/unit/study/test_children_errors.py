"""A child's errors file marks the test molecules its reported MAE skips."""

import numpy as np
from ase import Atoms

from molpre.study.children import unsupported_as_nan


def test_molecules_with_an_unseen_element_become_nan_and_the_rest_are_kept():
    atoms = [Atoms("CH4"), Atoms("CH3F"), Atoms("H2O"), Atoms("NH3")]
    errors = np.array([0.1, 0.2, 0.3, 0.4])
    out = unsupported_as_nan(errors, atoms, elements=[1, 6, 8])
    assert np.isnan(out[[1, 3]]).all()
    np.testing.assert_array_equal(out[[0, 2]], [0.1, 0.3])
    assert np.nanmean(out) == np.mean([0.1, 0.3])  # what test_mae of the child averages
    np.testing.assert_array_equal(errors, [0.1, 0.2, 0.3, 0.4])  # the input is not modified


def test_every_element_seen_keeps_every_error():
    atoms = [Atoms("CH4"), Atoms("H2O")]
    out = unsupported_as_nan(np.array([1.0, 2.0]), atoms, elements=np.array([1, 6, 7, 8]))
    np.testing.assert_array_equal(out, [1.0, 2.0])
