"""One typed entry point to PySCF: ``compute(atoms, level, forces) -> QCResult``.

PySCF is imported lazily (``molpre --help`` stays fast). Units are converted here and
nowhere else: positions go in as Bohr (molpre's constant), energies and orbital energies
come out in eV, forces in eV/Angstrom, the dipole in Debye.

Convergence ladder (recorded in ``QCResult.ladder``): plain DIIS; then damping with a late
DIIS start and a level shift, from the last density; then second-order SCF (``.newton()``).
An SCF that is still not converged is an error, never a label.

Time limit: ``level.time_limit_s`` is checked in the SCF callback (each iteration) and
between steps, raising :class:`TimeLimitExceeded`; steps PySCF cannot interrupt (grid and
DF setup, gradients) are bounded by the runner, which kills a worker that overruns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from molpre.errors import first_line
from molpre.qc.checks import check_all
from molpre.qc.content_keys import charge_spin
from molpre.qc.levels import LevelOfTheory
from molpre.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV

FORCE_FACTOR = HARTREE_TO_EV / BOHR_TO_ANGSTROM  # Hartree/Bohr -> eV/Angstrom


class TimeLimitExceeded(RuntimeError):
    """Raised inside the SCF when a conformer's wall-clock limit is reached."""


@dataclass
class QCResult:
    """Outcome for one conformer: a label (``ok``) or an error with its ``reason``.

    energy: eV; forces: ``[n_atoms, 3]`` eV/Angstrom or None; homo/lumo: eV (lumo None
    when there is no virtual orbital); dipole: ``[3]`` Debye; ladder: SCF steps tried.
    """

    ok: bool
    reason: str = ""
    energy: float | None = None
    forces: np.ndarray | None = None
    homo: float | None = None
    lumo: float | None = None
    dipole: np.ndarray | None = None
    converged: bool = False
    scf_cycles: int = 0
    wall_s: float = 0.0
    ladder: list[str] = field(default_factory=list)


def build_mol(atoms: Atoms, level: LevelOfTheory, charge: int, spin: int):
    """A silent ``pyscf.gto.Mole``; positions converted Angstrom -> Bohr here."""
    from pyscf import gto

    bohr = np.asarray(atoms.get_positions(), dtype=float) / BOHR_TO_ANGSTROM
    atom = [(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), bohr, strict=True)]
    return gto.M(
        atom=atom, unit="Bohr", basis=level.basis, charge=charge, spin=spin - 1,
        cart=level.cart, verbose=0, output=None,
    )


def build_mf(mol, level: LevelOfTheory):
    """The SCF object: R/U HF or KS by spin, density-fitted if asked, no checkpoint file."""
    from pyscf import dft, scf

    restricted = mol.spin == 0
    if level.is_hf:
        mf = scf.RHF(mol) if restricted else scf.UHF(mol)
    else:
        mf = dft.RKS(mol) if restricted else dft.UKS(mol)
        mf.xc = level.method
        mf.grids.level = level.grid_level
    if level.density_fit:
        mf = mf.density_fit(auxbasis=level.auxbasis)
    mf.conv_tol = level.conv_tol
    mf.max_cycle = level.max_cycle
    mf.chkfile = None
    mf.verbose = 0
    return mf


def _deadline_callback(deadline: float | None, limit: float | None):
    def callback(envs: dict) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeLimitExceeded(f"time limit exceeded ({limit:g} s) in SCF cycle {envs.get('cycle', '?')}")

    return callback


def _run_ladder(mf, level: LevelOfTheory, deadline: float | None, ladder: list[str]) -> tuple[object, int]:
    """Run DIIS -> damping+level shift -> newton until converged, appending each step to
    ``ladder`` (kept even when a step raises); return (mf, SCF cycles)."""
    callback = _deadline_callback(deadline, level.time_limit_s)
    mf.callback = callback
    cycles = 0
    ladder.append("diis")
    mf.kernel()
    cycles += int(getattr(mf, "cycles", level.max_cycle))
    if not mf.converged:
        ladder.append("damp+shift")
        dm = mf.make_rdm1()
        mf.damp, mf.level_shift, mf.diis_start_cycle = 0.5, 0.3, 8
        mf.kernel(dm0=dm)
        cycles += int(getattr(mf, "cycles", level.max_cycle))
        mf.damp, mf.level_shift, mf.diis_start_cycle = 0.0, 0.0, 1
    if not mf.converged:
        ladder.append("newton")
        dm = mf.make_rdm1()
        soscf = mf.newton()
        soscf.callback, soscf.verbose = callback, 0
        soscf.kernel(dm0=dm)
        cycles += int(getattr(soscf, "cycles", level.max_cycle))
        for attr in ("mo_coeff", "mo_occ", "mo_energy", "e_tot", "converged"):
            setattr(mf, attr, getattr(soscf, attr))
    return mf, cycles


def frontier_orbitals(mo_energy, mo_occ) -> tuple[float, float | None]:
    """HOMO and LUMO in eV (both spins for unrestricted; LUMO None if no virtuals)."""
    energy = np.asarray(mo_energy, dtype=float).ravel()
    occ = np.asarray(mo_occ, dtype=float).ravel()
    homo = float(energy[occ > 0].max()) * HARTREE_TO_EV
    virtual = energy[occ == 0]
    lumo = float(virtual.min()) * HARTREE_TO_EV if virtual.size else None
    return homo, lumo


def compute(atoms: Atoms, level: LevelOfTheory, forces: bool = False) -> QCResult:
    """Label one conformer. Charge and multiplicity come from ``atoms.info`` (``charge``, ``spin``).

    Args:
        atoms: positions ``[n_atoms, 3]`` Angstrom; ``info['spin']`` is 2S+1.
        level: level of theory and limits.
        forces: also compute analytic forces (eV/Angstrom).

    Returns:
        QCResult with ``ok`` True and the label, or ``ok`` False and a one-line ``reason``.
        Never raises for bad input or SCF failures.
    """
    start = time.monotonic()
    deadline = start + level.time_limit_s if level.time_limit_s else None
    charge, spin = charge_spin(atoms)
    reason = check_all(atoms, level, charge, spin)
    if reason:
        return QCResult(ok=False, reason=reason, wall_s=time.monotonic() - start)
    ladder: list[str] = []
    cycles = 0
    try:
        mf = build_mf(build_mol(atoms, level, charge, spin), level)
        mf, cycles = _run_ladder(mf, level, deadline, ladder)
        if not mf.converged:
            reason = (f"SCF not converged after {'>'.join(ladder)} "
                      f"({cycles} cycles, max_cycle={level.max_cycle} per step)")
            return QCResult(ok=False, reason=reason, scf_cycles=cycles, ladder=ladder,
                            wall_s=time.monotonic() - start)
        result = _collect(mf, forces, deadline, level)
    except TimeLimitExceeded as err:
        return QCResult(ok=False, reason=str(err), scf_cycles=cycles, ladder=ladder,
                        wall_s=time.monotonic() - start)
    except Exception as err:  # PySCF errors (unknown functional, linear dependence, ...)
        return QCResult(ok=False, reason=f"pyscf error: {type(err).__name__}: {first_line(err, 200)}",
                        scf_cycles=cycles, ladder=ladder, wall_s=time.monotonic() - start)
    result.scf_cycles, result.ladder = cycles, ladder
    result.wall_s = time.monotonic() - start
    return result


def _collect(mf, forces: bool, deadline: float | None, level: LevelOfTheory) -> QCResult:
    """Energy, orbitals, dipole and (optionally) forces of a converged SCF, in molpre units."""
    homo, lumo = frontier_orbitals(mf.mo_energy, mf.mo_occ)
    dipole = np.asarray(mf.dip_moment(unit="Debye", verbose=0), dtype=float)
    result = QCResult(ok=True, energy=float(mf.e_tot) * HARTREE_TO_EV, homo=homo, lumo=lumo,
                      dipole=dipole, converged=True)
    if forces:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeLimitExceeded(f"time limit exceeded ({level.time_limit_s:g} s) before forces")
        grad = mf.nuc_grad_method()
        grad.verbose = 0
        result.forces = -np.asarray(grad.kernel(), dtype=float) * FORCE_FACTOR
    return result
