"""Check molpre's PySCF labels against published QM9 energies (B3LYP/6-31G(2df,p)).

Labels >= 40 molecules of <= 14 atoms from ../shared/data/qm9_sample3000.extxyz.gz at their
published geometries with ``molpre.qc.compute``, fits one offset per element to
``E_pyscf - e_elec`` (least squares, ``molpre.models.atomref.fit_atomref``) and prints the
residual MAE / max in kcal/mol. The offset is expected: Gaussian 09 used Cartesian d (6D)
and pure f (7F) shells; PySCF is all-spherical by default (``--shells spherical``) or
all-Cartesian (``--shells cart``, also 10F), so neither matches exactly and the difference
is close to a per-element constant. Results are cached in a JSONL file, so a killed run
resumes.

    OMP_NUM_THREADS=1 python bench/qm9_reference.py --shells spherical cart --threads 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import ase.io
import numpy as np

from molpre.models.atomref import atomref_energy, fit_atomref
from molpre.qc.levels import LevelOfTheory
from molpre.qc.pyscf import compute
from molpre.units import EV_TO_KCAL_PER_MOL, HARTREE_TO_EV

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_sample3000.extxyz.gz"


def select(path: Path, n: int, max_atoms: int, seed: int) -> list:
    """``n`` molecules with <= ``max_atoms`` atoms, drawn with ``default_rng(seed)``."""
    frames = ase.io.read(gzip.open(path, "rt"), index=":", format="extxyz")
    eligible = [f for f in frames if len(f) <= max_atoms]
    pick = sorted(np.random.default_rng(seed).choice(len(eligible), n, replace=False))
    return [eligible[i] for i in pick]


def read_cache(cache: Path) -> dict[str, dict]:
    """mol_id -> record of every molecule labeled so far (by any process)."""
    if not cache.exists():
        return {}
    return {r["mol_id"]: r for r in map(json.loads, cache.read_text().splitlines()) if r}


def label(frames: list, level: LevelOfTheory, cache: Path) -> dict[str, dict]:
    """Compute (or read from ``cache``) the PySCF energy of every frame; mol_id -> record."""
    done = read_cache(cache)
    with cache.open("a") as out:
        for k, atoms in enumerate(frames):
            mol_id = atoms.info["mol_id"]
            done.update(read_cache(cache))  # another process may have done it meanwhile
            if mol_id in done:
                continue
            result = compute(atoms, level)
            record = {"mol_id": mol_id, "ok": result.ok, "reason": result.reason,
                      "energy_ev": result.energy, "wall_s": result.wall_s}
            out.write(json.dumps(record) + "\n")
            out.flush()
            done[mol_id] = record
            print(f"  [{k + 1}/{len(frames)}] {mol_id} {len(atoms)} atoms "
                  f"{result.wall_s:.1f} s {result.reason}", flush=True)
    return done


def compare(frames: list, records: dict[str, dict]) -> dict:
    """Per-element offset fit of E_pyscf - e_elec; residual statistics in kcal/mol."""
    used = [f for f in frames if records.get(f.info["mol_id"], {}).get("ok")]
    numbers = [f.numbers for f in used]
    diff = np.array([records[f.info["mol_id"]]["energy_ev"] - f.info["e_elec"] * HARTREE_TO_EV
                     for f in used])
    offsets = fit_atomref(numbers, diff)
    resid = np.array([d - atomref_energy(z, offsets) for z, d in zip(numbers, diff, strict=True)])
    kcal = np.abs(resid) * EV_TO_KCAL_PER_MOL
    return {"n": len(used), "raw_mae": float(np.abs(diff).mean() * EV_TO_KCAL_PER_MOL),
            "mae": float(kcal.mean()), "max": float(kcal.max()),
            "offsets": {int(z): v * EV_TO_KCAL_PER_MOL for z, v in offsets.items()},
            "wall_s": float(sum(records[f.info["mol_id"]]["wall_s"] for f in used))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--max-atoms", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shells", nargs="+", default=["spherical", "cart"],
                        choices=["spherical", "cart"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=Path("bench/out"))
    parser.add_argument("--reverse", action="store_true",
                        help="label in reverse order (a second process can share the cache)")
    args = parser.parse_args()
    from pyscf import lib

    lib.num_threads(args.threads)
    frames = select(args.data, args.n, args.max_atoms, args.seed)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for shells in args.shells:
        level = LevelOfTheory("b3lyp", "6-31g(2df,p)", cart=shells == "cart", grid_level=3)
        print(f"{level.tag}: {len(frames)} molecules", flush=True)
        t0 = time.time()
        cache = args.cache_dir / f"qm9_reference_{shells}.jsonl"
        records = label(frames[::-1] if args.reverse else frames, level, cache)
        records.update(read_cache(cache))  # rows a concurrent process added meanwhile
        rows.append((shells, compare(frames, records), time.time() - t0))
    print("\nB3LYP/6-31G(2df,p), density fitting, grid level 3, vs published QM9 e_elec")
    print(f"{'shells':<10}{'n':>4}{'raw MAE':>10}{'fit MAE':>10}{'fit max':>10}{'wall s':>9}  "
          "offsets kcal/mol (Z: value)")
    for shells, stats, _ in rows:
        offs = " ".join(f"{z}:{v:+.2f}" for z, v in sorted(stats["offsets"].items()))
        print(f"{shells:<10}{stats['n']:>4}{stats['raw_mae']:>10.3f}{stats['mae']:>10.3f}"
              f"{stats['max']:>10.3f}{stats['wall_s']:>9.0f}  {offs}")
    print("(kcal/mol; raw = before the per-element offset fit; wall s = sum over molecules, shared machine)")


if __name__ == "__main__":
    main()
