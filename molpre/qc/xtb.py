"""GFN2-xTB and GFN1-xTB through tblite: ``compute(atoms, level, forces) -> QCResult``.

tblite works in atomic units: positions go in as Bohr, the energy (Hartree) and gradient
(Hartree/Bohr) come back and are converted here, with molpre's constants, to eV and
eV/Angstrom. Every single point runs on one pinned OpenMP thread (:func:`pinned_threads`):
with the default threads a QM9-sized molecule took 150 ms on a busy 2-core machine here,
against 3.5 ms pinned; parallelism comes from worker processes. tblite is imported lazily; where it is not installed (it ships Linux
x86-64 wheels only) the level is a one-line error.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from ase import Atoms

from molpre.errors import first_line
from molpre.qc.checks import check_electrons, check_overlap, check_size
from molpre.qc.content_keys import charge_spin
from molpre.qc.levels import XTB_METHODS, LevelOfTheory
from molpre.qc.pyscf import FORCE_FACTOR, QCResult
from molpre.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV

#: Elements GFN2-xTB and GFN1-xTB are parametrised for (H to Rn).
MAX_Z = 86
DEBYE_PER_AU = 2.541746473  # e*Bohr -> Debye


_CONTROLLER = None


def _controller():
    """One threadpoolctl controller per process, made after tblite's OpenMP is loaded (a
    controller only sees the libraries loaded when it is made; making one costs ~1 ms)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import tblite.interface  # noqa: F401 - load its OpenMP runtime first
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextmanager
def pinned_threads(threads: int = 1):
    """Limit OpenMP/BLAS threads (tblite's among them) to ``threads`` inside the block
    (about 0.4 ms a call on a busy machine; unpinned, one GFN2 single point took 0.93 s
    instead of 0.034 s with 11 runnable processes on 2 cores)."""
    try:
        controller = _controller()
    except ImportError:  # no tblite: nothing of ours to pin
        yield
        return
    with controller.limit(limits=max(1, int(threads))):
        yield


def _check(atoms: Atoms, level: LevelOfTheory, charge: int, spin: int) -> str | None:
    if int(np.max(atoms.numbers, initial=0)) > MAX_Z:
        return f"{level.method} has no parameters beyond Rn (Z = {MAX_Z})"
    return (check_size(atoms, level) or check_overlap(atoms)
            or check_electrons(atoms, charge, spin))


def compute(atoms: Atoms, level: LevelOfTheory, forces: bool = False) -> QCResult:
    """One GFN-xTB single point (never raises for bad input: failures are ``ok=False``).

    Args:
        atoms: positions ``[n_atoms, 3]`` Angstrom; ``info['charge']``, ``info['spin']`` (2S+1).
        level: ``gfn2-xtb`` or ``gfn1-xtb`` (``max_atoms`` applies).
        forces: also return forces ``[n_atoms, 3]`` eV/Angstrom (the gradient is computed with
            the energy anyway).
    """
    start = time.monotonic()
    charge, spin = charge_spin(atoms)
    reason = _check(atoms, level, charge, spin)
    if reason:
        return QCResult(ok=False, reason=reason, wall_s=time.monotonic() - start)
    try:
        from tblite.interface import Calculator
    except ImportError:
        return QCResult(ok=False, reason=f"{level.method} needs tblite (pip install tblite)")
    try:
        calc = Calculator(XTB_METHODS[level.tag], np.asarray(atoms.numbers),
                          np.asarray(atoms.positions, dtype=float) / BOHR_TO_ANGSTROM,
                          charge=float(charge), uhf=spin - 1)
        calc.set("verbosity", 0)
        with pinned_threads(1):  # nested in compute_many's pin: same limit, no harm
            res = calc.singlepoint()
        energy = float(res.get("energy")) * HARTREE_TO_EV
        result = QCResult(ok=True, energy=energy, converged=True,
                          dipole=np.asarray(res.get("dipole"), dtype=float) * DEBYE_PER_AU)
        if forces:
            result.forces = -np.asarray(res.get("gradient"), dtype=float) * FORCE_FACTOR
    except Exception as err:  # tblite raises RuntimeError for SCC failures and bad input
        return QCResult(ok=False, reason=f"tblite error: {first_line(err, 200)}",
                        wall_s=time.monotonic() - start)
    result.wall_s = time.monotonic() - start
    return result
