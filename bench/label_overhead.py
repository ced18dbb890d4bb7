"""Overhead of `molpre label` over a plain PySCF loop, and workers x threads on 2 cores.

20 molecules of the QM9 sample (../shared/data) at HF/6-31G by default (``--method``,
``--basis``; density fitting, grid level 3 for DFT, conv_tol 1e-9, energies only). Every configuration runs end to end as a fresh
subprocess (interpreter start, imports, reading the extxyz, computing, and for molpre the
worker start and the SQLite writes), so the ratio is what a user sees:

* plain: a bare loop over ``gto.M`` / ``dft.RKS(...).density_fit()`` / ``kernel()``;
* molpre: ``python -m molpre label ... --workers W --threads T`` (the CLI).

Configurations (workers x threads): plain 1x1 vs molpre 1x1 is the overhead; molpre 2x1 vs
1x2 compares processes with threads on 2 cores. CPU time of threaded runs includes OpenMP
spin-waiting, which a loaded machine inflates.

Each configuration runs ``--repeats`` times, interleaved; the table shows the fastest, as
wall time and as CPU time of the whole process tree (user + sys; robust to a shared machine).
The energies of both paths are checked to agree to 1e-8 Hartree.

    python bench/label_overhead.py --repeats 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_sample3000.extxyz.gz"


def plain_loop(path: str, threads: int, out: str, method: str, basis: str) -> None:
    """The reference: the same calculations with nothing but PySCF (energies to ``out``)."""
    from pyscf import dft, gto, lib, scf

    lib.num_threads(threads)
    energies = []
    for atoms in ase.io.read(path, index=":"):
        mol = gto.M(atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(),
                                  strict=True)), basis=basis, verbose=0)
        if method.lower() == "hf":
            mf = scf.RHF(mol).density_fit()
        else:
            mf = dft.RKS(mol, xc=method).density_fit()
            mf.grids.level = 3
        mf.conv_tol, mf.chkfile = 1e-9, None
        energies.append(float(mf.kernel()))
    Path(out).write_text(json.dumps(energies))


def timed(cmd: list[str], threads: int) -> tuple[float, float]:
    """(wall s, CPU s of the process tree: user + sys of all reaped descendants)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def molpre_cmd(src: Path, db: Path, workers: int, threads: int, method: str,
               basis: str) -> list[str]:
    return [sys.executable, "-m", "molpre", "label", str(src), "-o", str(db), "--method", method,
            "--basis", basis, "--workers", str(workers), "--threads", str(threads)]


def check_energies(plain_json: Path, db: Path) -> float:
    """Largest |E_molpre - E_plain| in Hartree (rows matched by mol_id order)."""
    from molpre.data.store import read_labels
    from molpre.units import HARTREE_TO_EV

    plain = json.loads(plain_json.read_text())
    labels = sorted(read_labels(db), key=lambda a: a.info["conf_id"])
    ours = [a.get_potential_energy() / HARTREE_TO_EV for a in labels]
    return float(np.max(np.abs(np.array(ours) - np.array(plain))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--method", default="hf")
    parser.add_argument("--basis", default="6-31g")
    parser.add_argument("--plain-loop", nargs=3, metavar=("INPUT", "THREADS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_loop:
        src, threads, out = args.plain_loop
        plain_loop(src, int(threads), out, args.method, args.basis)
        return
    frames = ase.io.read(gzip.open(args.data, "rt"), index=":", format="extxyz")
    pick = np.random.default_rng(1).choice(len(frames), args.n, replace=False)
    work = Path(tempfile.mkdtemp(prefix="label_overhead_"))
    src = work / "in.extxyz"
    subset = []
    for conf_id, i in enumerate(pick):
        atoms = frames[int(i)]
        atoms.info = {"mol_id": frames[int(i)].info["mol_id"], "conf_id": conf_id}
        subset.append(atoms)
    ase.io.write(src, subset, format="extxyz")
    configs = {"plain 1x1": ("plain", 1, 1), "molpre 1x1": ("molpre", 1, 1),
               "molpre 1x2": ("molpre", 1, 2), "molpre 2x1": ("molpre", 2, 1)}
    best: dict[str, tuple[float, float]] = {}
    for rep in range(args.repeats):
        for name, (kind, workers, threads) in configs.items():
            out = work / f"{name.replace(' ', '_')}_{rep}"
            cmd = ([sys.executable, __file__, "--plain-loop", str(src), str(threads), f"{out}.json",
                    "--method", args.method, "--basis", args.basis] if kind == "plain"
                   else molpre_cmd(src, Path(f"{out}.db"), workers, threads, args.method,
                                   args.basis))
            wall, cpu = timed(cmd, threads)
            best[name] = min(best.get(name, (np.inf, np.inf)), (wall, cpu))
            print(f"  rep {rep} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    drift = check_energies(work / "plain_1x1_0.json", work / "molpre_1x1_0.db")
    atoms = sum(len(a) for a in subset)
    print(f"\n{args.n} QM9 molecules ({atoms} atoms), {args.method.upper()}/{args.basis.upper()}, "
          f"density fitting, grid 3 (DFT), energies; best of {args.repeats}; "
          f"{os.cpu_count()} cores")
    print(f"{'configuration':<16}{'wall s':>9}{'vs plain':>10}{'CPU s':>9}{'vs plain':>10}")
    ref_wall, ref_cpu = best["plain 1x1"]
    for name, (wall, cpu) in best.items():
        print(f"{name:<16}{wall:>9.1f}{wall / ref_wall:>10.3f}{cpu:>9.1f}{cpu / ref_cpu:>10.3f}")
    print(f"max |E_molpre - E_plain| = {drift:.1e} Hartree; "
          "configurations are workers x threads; timings on a shared machine")


if __name__ == "__main__":
    main()
