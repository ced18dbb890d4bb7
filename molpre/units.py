"""Unit conversions. Inside molpre everything is eV and Angstrom (ASE's convention).

PySCF's Hartree and Bohr are converted once, at the qc boundary, with these constants,
taken from ASE: ASE 3.29 uses CODATA 2014 (``ase.units.__codata_version__``), so
1 Hartree = 27.211386024367 eV and 1 Bohr = 0.52917721056 Angstrom. molpre hands PySCF
coordinates in Bohr and converts energies, orbital energies and forces back with these same
two constants; it never uses PySCF's own table (``pyscf.data.nist``: HARTREE2EV = 27.21138602,
the 2014 value to 10 digits, 1.6e-10 relative below ASE's). CODATA 2018's Hartree
(27.211386245988 eV) is 8.1e-9 relative above the one used here, about 1 micro-eV on a
100-Hartree molecule: far below any error molpre reports, but labels from tools on CODATA 2018
differ in the 9th digit. Errors are reported in meV and kcal/mol.
"""

from __future__ import annotations

from ase import units as _ase_units

HARTREE_TO_EV: float = float(_ase_units.Hartree)  # 27.211386... eV
BOHR_TO_ANGSTROM: float = float(_ase_units.Bohr)  # 0.529177... Angstrom
KCAL_PER_MOL_TO_EV: float = float(_ase_units.kcal / _ase_units.mol)  # 0.0433641... eV
EV_TO_MEV: float = 1000.0
EV_TO_KCAL_PER_MOL: float = 1.0 / KCAL_PER_MOL_TO_EV
DEBYE_PER_E_ANGSTROM: float = 1.0 / float(_ase_units.Debye)  # 4.8032 D per e*Angstrom
BOHR3_TO_ANGSTROM3: float = BOHR_TO_ANGSTROM**3  # 0.148185 Angstrom^3

#: Factors that turn a value in the named unit into eV.
ENERGY_UNITS_TO_EV: dict[str, float] = {
    "ev": 1.0,
    "mev": 1e-3,
    "hartree": HARTREE_TO_EV,
    "ha": HARTREE_TO_EV,
    "kcal/mol": KCAL_PER_MOL_TO_EV,
    "kcal_mol": KCAL_PER_MOL_TO_EV,
}


def to_ev(value, unit: str):
    """Convert ``value`` (scalar or array) from ``unit`` (eV, meV, hartree, kcal/mol) to eV."""
    try:
        factor = ENERGY_UNITS_TO_EV[unit.lower()]
    except KeyError:
        known = ", ".join(sorted(ENERGY_UNITS_TO_EV))
        raise ValueError(f"unknown energy unit {unit!r}; use one of: {known}") from None
    return value * factor
