"""XYZ / extended-XYZ input: geometry checks and bond perception with RDKit.

Bonds and bond orders come from ``rdkit.Chem.rdDetermineBonds.DetermineBonds`` using the
frame's total charge (``atoms.info["charge"]``, else 0); connectivity from covalent radii,
else from extended Hueckel. The given geometry is kept: it becomes
conformer 0 of the molecule (see :func:`molpre.chem.conformers.embed_conformers`).

Frames with non-finite coordinates, atoms closer than ``MIN_DISTANCE`` or more atoms than the
size limit are error rows before bond perception (which can be slow on huge inputs). A frame
ASE cannot parse ends the file: it becomes one error row and reading stops there, because the
frame boundaries after it are unknown.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from rdkit import Chem, rdBase
from rdkit.Chem import rdDetermineBonds
from scipy.spatial.distance import pdist

from molpre.chem.molecules import IntakeConfig, MoleculeRecord, error_record, record_from_mol
from molpre.errors import first_line

#: Atoms closer than this (Angstrom) are "overlapping": no real molecule has them.
MIN_DISTANCE = 0.5
#: Cap on DetermineBonds' bond-order search, so a pathological frame cannot hang the run.
BOND_ORDER_ITERATIONS = 10_000


def geometry_problem(positions: np.ndarray, min_distance: float = MIN_DISTANCE) -> str | None:
    """The reason a geometry is unusable, or None. positions: [n_atoms, 3] Angstrom."""
    pos = np.asarray(positions, dtype=float)
    if pos.size == 0:
        return "empty frame (no atoms)"
    if not np.isfinite(pos).all():
        return "non-finite (NaN or inf) coordinates"
    if len(pos) > 1:
        distances = pdist(pos)
        k = int(np.argmin(distances))
        if distances[k] < min_distance:
            i, j = _pair_of(k, len(pos))
            return (f"overlapping atoms {i} and {j} ({distances[k]:.3f} A apart, "
                    f"< {min_distance} A)")
    return None


def _pair_of(k: int, n: int) -> tuple[int, int]:
    """Indices (i, j) of entry ``k`` of a condensed distance matrix over ``n`` points."""
    i = 0
    while k >= n - 1 - i:
        k -= n - 1 - i
        i += 1
    return i, i + 1 + k


@contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to /dev/null for the block.

    RDKit's extended-Hueckel connectivity (yaehmop) prints "!!! Warning !!! Distance between
    atoms ... is suspicious" straight to fd 2 for every O-H near 0.96 A, past RDKit's log
    switches, flooding batch logs. Python's ``sys.stderr`` is flushed first; anything another
    thread writes to fd 2 inside the block is lost, so keep the block to one call. Where fd 2
    cannot be duplicated (closed), the block runs unchanged.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def mol_from_atoms(atoms: Atoms, charge: int = 0) -> Chem.Mol:
    """An RDKit molecule with perceived bonds for ``atoms`` (raises ValueError on failure).

    Connectivity first comes from covalent radii; where that fails (strained cages, whose
    cross-ring distances look like bonds: 98 of 2,000 QM9 molecules), it is retried with
    RDKit's extended-Hueckel connectivity before the frame is given up.
    """
    lines = [str(len(atoms)), ""]
    lines += [f"{s} {x:.8f} {y:.8f} {z:.8f}"
              for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)]
    block = "\n".join(lines) + "\n"
    reasons = []
    with rdBase.BlockLogs():
        for options in ({}, {"useHueckel": True}):
            mol = Chem.MolFromXYZBlock(block)
            if mol is None:
                raise ValueError("RDKit could not read the frame")
            try:
                with _c_stderr_silenced() if options else nullcontext():
                    rdDetermineBonds.DetermineBonds(mol, charge=charge,
                                                    maxIterations=BOND_ORDER_ITERATIONS, **options)
                return mol
            except Exception as exc:  # RDKit raises ValueError/RuntimeError variants here
                reasons.append(first_line(exc))
    raise ValueError(f"bond perception failed at charge {charge}: {reasons[0]}"
                     + (f" (extended-Hueckel connectivity: {reasons[1]})" if len(reasons) > 1 else ""))


def _frame_record(atoms: Atoms, row: int, stem: str, config: IntakeConfig) -> MoleculeRecord:
    info = atoms.info
    mol_id = str(info.get("mol_id", info.get("name", f"{stem}-{row}")))
    text = f"{stem} frame {row} ({atoms.get_chemical_formula()})"
    problem = geometry_problem(atoms.positions)
    if problem is None and len(atoms) > config.max_atoms:
        problem = f"too large: {len(atoms)} atoms > {config.max_atoms}"
    if problem:
        return error_record(row, text, mol_id, problem)
    try:
        charge = int(info.get("charge", 0))
        mol = mol_from_atoms(atoms, charge)
    except (TypeError, ValueError) as exc:
        return error_record(row, text, mol_id, str(exc))
    return record_from_mol(mol, mol_id, row=row, input=text, config=config)


def read_xyz(path: Path, config: IntakeConfig | None = None) -> Iterator[MoleculeRecord]:
    """Records for every frame of an XYZ/extxyz file (optionally gzipped), lazily."""
    config = config or IntakeConfig()
    stem = Path(path.stem).stem if path.suffix == ".gz" else path.stem
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        frames = ase.io.iread(handle, index=":", format="extxyz")
        row = 0
        while True:
            row += 1
            try:
                atoms = next(frames)
            except StopIteration:
                return
            except Exception as exc:  # ASE raises many types on malformed text
                yield error_record(row, f"{stem} frame {row}", f"{stem}-{row}",
                                   f"unreadable XYZ frame ({type(exc).__name__}: {exc}); "
                                   "reading stopped here")
                return
            yield _frame_record(atoms, row, stem, config)
