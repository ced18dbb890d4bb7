"""The unit convention the docs state is the one molpre uses."""

import ase.units
import pytest

from molpre import units


def test_hartree_and_bohr_are_ases_codata_2014_values():
    assert ase.units.__codata_version__ == "2014"
    assert units.HARTREE_TO_EV == ase.units.Hartree == pytest.approx(27.211386024367, abs=1e-11)
    assert units.BOHR_TO_ANGSTROM == ase.units.Bohr
    assert "CODATA 2014" in units.__doc__


def test_codata_2018_differs_by_about_8e_9_relative():
    hartree_2018 = ase.units.create_units("2018")["Hartree"]
    assert hartree_2018 / units.HARTREE_TO_EV - 1 == pytest.approx(8.1e-9, rel=0.01)


def test_pyscf_table_is_not_what_molpre_converts_with():
    nist = pytest.importorskip("pyscf.data.nist")
    assert abs(nist.HARTREE2EV / units.HARTREE_TO_EV - 1) < 1e-9
    assert nist.HARTREE2EV != units.HARTREE_TO_EV
