"""3D conformers: RDKit ETKDGv3 + MMFF94 (UFF fallback), deterministic for a seed.

For a molecule without a geometry, ``n`` embeddings are requested from ETKDGv3 with RMS pruning
(so rigid molecules may give fewer than ``n``), a per-call timeout and one thread; when none
succeeds, embedding is retried from random coordinates. Each conformer is then optimized with
MMFF94, or UFF where MMFF94 lacks parameters (``info["ff"]`` says which). The same seed is used
for every molecule, so results do not depend on input order or worker count.

Molecules read with a geometry (XYZ, 3D SDF) keep it as conformer 0, unoptimized (it may be a
reference DFT structure; its ``ff_energy`` is a single point); ``n - 1`` more are generated.

Failure is never silent: no conformer, no force field, or a non-finite energy raises
:class:`ConformerError` with the reason (never a 2D or zero-filled fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from molpre.chem.molecules import MoleculeRecord
from molpre.units import KCAL_PER_MOL_TO_EV


class ConformerError(RuntimeError):
    """Conformer generation failed; ``str(err)`` is the one-line reason."""


@dataclass(frozen=True)
class ConformerConfig:
    """Embedding and optimization settings.

    prune_rms: ETKDG heavy-atom RMS pruning threshold (Angstrom). timeout_s: per embedding call
    (seconds). random_coords_retry: retry a failed embedding from random coordinates.
    max_ff_iters: force-field optimizer steps per conformer.
    """

    prune_rms: float = 0.5
    timeout_s: int = 20
    random_coords_retry: bool = True
    max_ff_iters: int = 2000


def rdkit_seed(seed: int) -> int:
    """Map any integer seed to RDKit's usable range 1..2**31-2.

    RDKit treats -1 as "unseeded", and seed 0 makes every conformer of a multi-conformer call
    identical (they are then all pruned to one), so neither may reach RDKit.
    """
    return int(seed) % (2**31 - 2) + 1


def _params(seed: int, config: ConformerConfig, random_coords: bool) -> rdDistGeom.EmbedParameters:
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = rdkit_seed(seed)
    params.pruneRmsThresh = config.prune_rms
    params.timeout = config.timeout_s
    params.numThreads = 1
    params.useRandomCoords = random_coords
    params.trackFailures = True
    return params


def _failure_summary(attempts: list[rdDistGeom.EmbedParameters]) -> str:
    """RDKit's embedding failure counts, summed over attempts: "INITIAL_COORDS x197, ..."."""
    names = {int(v): k for k, v in rdDistGeom.EmbedFailureCauses.names.items()}
    totals = np.sum([list(p.GetFailureCounts()) for p in attempts], axis=0)
    counts = sorted(((int(c), names.get(i, str(i))) for i, c in enumerate(totals) if c),
                    reverse=True)
    return ", ".join(f"{name} x{count}" for count, name in counts) or "none recorded"


def _embed(mol: Chem.Mol, n: int, seed: int, config: ConformerConfig) -> list[int]:
    """Embed up to ``n`` conformers into ``mol`` (explicit H) in place; return their ids.

    RDKit returns ``[-1]`` (not ``[]``) when its timeout ends the call; those ids are dropped.
    Raises ConformerError naming RDKit's failure causes when no conformer was embedded.
    """
    attempts = [_params(seed, config, False)]
    if config.random_coords_retry:
        attempts.append(_params(seed, config, True))
    for params in attempts:
        ids = [i for i in rdDistGeom.EmbedMultipleConfs(mol, n, params) if i >= 0]
        if ids:
            return ids
    timed_out = any(p.GetFailureCounts()[int(rdDistGeom.EmbedFailureCauses.EXCEEDED_TIMEOUT)]
                    for p in attempts)
    how = f"within the {config.timeout_s} s timeout" if timed_out else "(no valid geometry)"
    retry = " (also from random coordinates)" if config.random_coords_retry else ""
    advice = ("; large or flexible molecules need a longer embedding timeout "
              "(--embed-timeout) or fewer heavy atoms" if timed_out else "")
    raise ConformerError(
        f"embedding failed: ETKDGv3 produced no conformer {how}{retry}; RDKit failures: "
        f"{_failure_summary(attempts)}{advice}")


def _force_field(mol: Chem.Mol) -> str:
    if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        return "MMFF94"
    if rdForceFieldHelpers.UFFHasAllMoleculeParams(mol):
        return "UFF"
    raise ConformerError("no force-field parameters (neither MMFF94 nor UFF)")


def _optimize(mol: Chem.Mol, ff: str, max_iters: int) -> list[tuple[bool, float]]:
    """Optimize every conformer of ``mol``; (converged, energy kcal/mol) per conformer."""
    if ff == "MMFF94":
        results = rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(
            mol, numThreads=1, maxIters=max_iters, mmffVariant="MMFF94")
    else:
        results = rdForceFieldHelpers.UFFOptimizeMoleculeConfs(
            mol, numThreads=1, maxIters=max_iters)
    return [(not_converged == 0, energy) for not_converged, energy in results]


def _single_point(mol: Chem.Mol, ff: str, conf_id: int) -> float:
    """Force-field energy (kcal/mol) of one conformer, without moving it."""
    if ff == "MMFF94":
        props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol, mmffVariant="MMFF94")
        field = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props, confId=conf_id)
    else:
        field = rdForceFieldHelpers.UFFGetMoleculeForceField(mol, confId=conf_id)
    return field.CalcEnergy()


def _to_atoms(mol: Chem.Mol, conf_id: int, record: MoleculeRecord, index: int, ff: str,
              energy_kcal: float, converged: bool, source: str) -> Atoms:
    if not math.isfinite(energy_kcal):
        raise ConformerError(f"{ff} energy is not finite for conformer {index}")
    positions = np.array(mol.GetConformer(conf_id).GetPositions(), dtype=float)
    atoms = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=positions)
    atoms.info.update(
        mol_id=record.mol_id, conf_id=index, smiles=record.smiles, inchikey=record.inchikey,
        charge=int(record.charge), spin=int(record.spin),
        ff_energy=float(energy_kcal) * KCAL_PER_MOL_TO_EV, ff=ff, ff_converged=bool(converged),
        source=source,
    )
    return atoms


def embed_conformers(record: MoleculeRecord, n: int = 4, seed: int = 0,
                     config: ConformerConfig | None = None) -> list[Atoms]:
    """Up to ``n`` conformers of an ok record as ASE Atoms (Angstrom; ff_energy in eV).

    ``atoms.info`` holds mol_id, conf_id, smiles, inchikey, charge, spin (multiplicity),
    ff_energy (eV), ff ("MMFF94"|"UFF"), ff_converged and source ("input"|"etkdg").
    Raises ConformerError with a reason; never returns an empty list.
    """
    if not record.ok:
        raise ConformerError(record.error or "record has no molecule")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    config = config or ConformerConfig()
    with rdBase.BlockLogs():
        return _conformers(record, n, seed, config)


def _conformers(record: MoleculeRecord, n: int, seed: int, config: ConformerConfig) -> list[Atoms]:
    out: list[Atoms] = []
    if record.has_geometry:
        given = Chem.Mol(record.mol)
        ff = _force_field(given)
        out.append(_to_atoms(given, given.GetConformer().GetId(), record, 0, ff,
                             _single_point(given, ff, given.GetConformer().GetId()), False, "input"))
        n -= 1
        if n == 0:
            return out
    mol = Chem.AddHs(record.mol)
    mol.RemoveAllConformers()
    try:
        ids = _embed(mol, n, seed, config)
    except ConformerError:
        if out:  # the input geometry is a conformer already
            return out
        raise
    ff = _force_field(mol)
    results = _optimize(mol, ff, config.max_ff_iters)
    for conf_id, (converged, energy) in zip(ids, results, strict=True):
        out.append(_to_atoms(mol, conf_id, record, len(out), ff, energy, converged, "etkdg"))
    return out
