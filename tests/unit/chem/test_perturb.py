"""Seeded Gaussian displacements of conformers (molpre label --perturb)."""

import numpy as np
import pytest
from ase.build import molecule

from molpre.chem.perturb import perturbed_copies


def _frames():
    frames = [molecule("H2O"), molecule("CH4")]
    for i, atoms in enumerate(frames):
        atoms.info.update({"mol_id": f"m{i}", "conf_id": i})
    return frames


def test_copies_are_seeded_gaussian_and_keep_their_molecule():
    frames = _frames()
    out = perturbed_copies(frames, 3, sigma=0.05, seed=7)
    assert len(out) == 2 + 6
    assert [a.info["perturbation"] for a in out] == [0, 0, 1, 2, 3, 1, 2, 3]
    assert [a.info["mol_id"] for a in out[2:]] == ["m0"] * 3 + ["m1"] * 3
    np.testing.assert_array_equal(out[0].positions, frames[0].positions)
    shifts = np.concatenate([(a.positions - frames[0].positions).ravel() for a in out[2:5]])
    assert np.all(shifts != 0) and 0.02 < shifts.std() < 0.1
    again = perturbed_copies(frames, 3, sigma=0.05, seed=7)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(out, again, strict=True))
    other = perturbed_copies(frames, 3, sigma=0.05, seed=8)
    assert not np.allclose(out[2].positions, other[2].positions)
    assert out[2].info["conf_id"] == 0 and "perturbation" not in frames[0].info


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="K >= 0"):
        perturbed_copies(_frames(), -1)
    with pytest.raises(ValueError, match="sigma"):
        perturbed_copies(_frames(), 2, sigma=0.0)
