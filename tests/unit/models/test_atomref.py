import numpy as np
import pytest

from molpre.models.atomref import atomref_energy, fit_atomref


def test_fit_recovers_exact_reference_energies():
    true = {1: -13.6, 6: -1030.0, 8: -2040.0}
    mols = [[6, 1, 1, 1, 1], [8, 1, 1], [6, 8], [6, 6, 1, 1, 1, 1, 1, 1], [1, 1]]
    energies = [sum(true[z] for z in m) for m in mols]
    fitted = fit_atomref(mols, energies)
    for z, e in true.items():
        assert fitted[z] == pytest.approx(e, abs=1e-4)
    assert atomref_energy([8, 1, 1], fitted) == pytest.approx(energies[1], abs=1e-4)


def test_fit_rejects_mismatched_lengths_and_unknown_elements():
    with pytest.raises(ValueError):
        fit_atomref([[1, 1]], [1.0, 2.0])
    fitted = fit_atomref([[1, 1], [1, 8, 1]], [-27.2, -2067.0])
    with pytest.raises(KeyError, match="Z=7"):
        atomref_energy([7], fitted)
    assert np.isfinite(list(fitted.values())).all()
