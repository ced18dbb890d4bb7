"""MMFF94 and MMFF94s through RDKit: ``compute(atoms, level, forces) -> QCResult``.

Bonds are perceived from the geometry (:func:`molpre.chem.xyz.mol_from_atoms`, at the
frame's charge), so any conformer works, a displaced copy included. RDKit gives kcal/mol and
kcal/mol/Angstrom; they are converted here to eV and eV/Angstrom. MMFF energies are relative
to no reference (a force-field energy, not a total energy): fine as a pretraining target or
a delta baseline after a per-element fit, meaningless as an absolute label.
"""

from __future__ import annotations

import time

import numpy as np
from ase import Atoms

from molpre.errors import first_line
from molpre.qc.checks import check_overlap, check_size
from molpre.qc.content_keys import charge_spin
from molpre.qc.levels import FORCE_FIELDS, LevelOfTheory
from molpre.qc.pyscf import QCResult
from molpre.units import KCAL_PER_MOL_TO_EV


def force_field(atoms: Atoms, level: LevelOfTheory, charge: int = 0):
    """The RDKit MMFF force field of ``atoms`` at its own positions (ValueError if MMFF has
    no parameters for it or its bonds cannot be perceived)."""
    from rdkit import Chem
    from rdkit.Chem import rdForceFieldHelpers as ff

    from molpre.chem.xyz import mol_from_atoms

    mol = mol_from_atoms(atoms, charge)
    Chem.SanitizeMol(mol)
    props = ff.MMFFGetMoleculeProperties(mol, mmffVariant=FORCE_FIELDS[level.tag])
    if props is None:
        raise ValueError(f"{level.method} has no parameters for this molecule")
    field = ff.MMFFGetMoleculeForceField(mol, props, nonBondedThresh=100.0,
                                         ignoreInterfragInteractions=False)
    if field is None:
        raise ValueError(f"{level.method}: RDKit could not set up the force field")
    return field


def compute(atoms: Atoms, level: LevelOfTheory, forces: bool = False) -> QCResult:
    """One MMFF single point (never raises for bad input: failures are ``ok=False``).

    Args:
        atoms: positions ``[n_atoms, 3]`` Angstrom; ``info['charge']`` sets bond perception.
        level: ``mmff94`` or ``mmff94s`` (``max_atoms`` applies).
        forces: also return forces ``[n_atoms, 3]`` eV/Angstrom (minus the MMFF gradient).
    """
    start = time.monotonic()
    charge, _ = charge_spin(atoms)
    reason = check_size(atoms, level) or check_overlap(atoms)
    if reason:
        return QCResult(ok=False, reason=reason, wall_s=time.monotonic() - start)
    try:
        field = force_field(atoms, level, charge)
        pos = np.asarray(atoms.positions, dtype=float).ravel().tolist()
        energy = float(field.CalcEnergy(pos)) * KCAL_PER_MOL_TO_EV
        result = QCResult(ok=True, energy=energy, converged=True)
        if forces:
            grad = np.asarray(field.CalcGrad(pos), dtype=float).reshape(-1, 3)
            result.forces = -grad * KCAL_PER_MOL_TO_EV
    except Exception as err:  # RDKit raises ValueError/RuntimeError variants
        return QCResult(ok=False, reason=f"{level.method}: {first_line(err, 200)}",
                        wall_s=time.monotonic() - start)
    result.wall_s = time.monotonic() - start
    return result
