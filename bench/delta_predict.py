"""A delta model's prediction cost: the cheap PySCF level per conformer, serial vs workers.

Usage: python bench/delta_predict.py MODEL MOLECULES.extxyz [--n 40] [--workers 1,2]

MODEL is a finetune OUTDIR (or model.ckpt) trained with ``--delta``; MOLECULES holds
geometries (the QM9 test file of bench/results/qm9_sample_delta). Prints one row per worker
count: wall seconds, conformers per second, the speed-up over one worker, and the largest
energy difference from the one-worker result (must be ~0: same PySCF, other processes).
Reference row: a plain PySCF loop over the same geometries (what the cheap level costs
without molpre).
"""

from __future__ import annotations

import argparse
import time

import ase.io
import numpy as np


def plain_pyscf(frames, level) -> float:
    """Seconds for ``molpre.qc.pyscf.compute`` on every frame in this process."""
    from molpre.qc.pyscf import compute

    start = time.perf_counter()
    for atoms in frames:
        compute(atoms, level)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("molecules")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()

    from molpre import Predictor
    from molpre.qc.levels import LevelOfTheory

    frames = ase.io.read(args.molecules, index=f":{args.n}")
    base = Predictor.load(args.model, progress=False)
    if base.delta is None:
        raise SystemExit(f"{args.model} is not a delta model (finetune --delta)")
    level = LevelOfTheory.from_dict(base.delta.level)
    rows, reference = [], None
    plain = plain_pyscf(frames, level)
    for workers in [int(w) for w in args.workers.split(",")]:
        predictor = Predictor.load(args.model, progress=False, workers=workers)
        start = time.perf_counter()
        table = predictor.predict(frames)
        seconds = time.perf_counter() - start
        energies = table["energy_ev"].to_numpy()
        reference = energies if reference is None else reference
        rows.append((workers, seconds, len(frames) / seconds, float(np.nanmax(np.abs(energies - reference)))))
    print(f"{len(frames)} conformers, cheap level {level.tag}; plain PySCF loop: {plain:.1f} s "
          f"({len(frames) / plain:.2f} conf/s)\n")
    print("| workers | wall s | conformers/s | vs 1 worker | vs plain PySCF | max |dE| vs 1 worker (eV) |")
    print("|---|---|---|---|---|---|")
    for workers, seconds, rate, diff in rows:
        print(f"| {workers} | {seconds:.1f} | {rate:.2f} | {rows[0][1] / seconds:.2f}x | "
              f"{plain / seconds:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
