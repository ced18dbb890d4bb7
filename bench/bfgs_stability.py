"""Does BFGS with a forces-trained molpre model keep molecules intact? Prints a table.

1. picks ``--train`` small molecules (<= ``--max-atoms`` atoms) of the QM9 sample
   (numpy.random.default_rng(seed)), at their published geometries;
2. labels them and ``--perturb`` displaced copies each (``--sigma`` Angstrom) with
   ``molpre label --forces --perturb K`` at HF/STO-3G, 1 worker x 1 thread (resumes);
3. finetunes a scratch model on energies + forces for at most ``--minutes`` (1 thread); the
   test split is 3 other molecules, so the BFGS molecules are in training or validation;
4. runs ase.optimize.BFGS (fmax 0.05 eV/Angstrom, at most 200 steps) with the model's ASE
   calculator from the published geometries of the first ``--bfgs`` chosen molecules (and,
   with ``--unseen``, of as many molecules the model never saw), and prints steps, energy
   change (eV), same InChIKey before/after (RDKit bond perception via molpre.chem), closest
   pair (Angstrom).

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bfgs_stability.py --out /tmp/bfgs
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

QM9 = Path(__file__).resolve().parents[1] / "../shared/data/qm9_sample3000.extxyz.gz"


def read_qm9(path: Path) -> list:
    import ase.io

    with gzip.open(path, "rt") as handle:
        return ase.io.read(io.StringIO(handle.read()), index=":", format="extxyz")


def choose(frames: list, n: int, max_atoms: int, seed: int) -> list:
    """``n`` molecules of at most ``max_atoms`` atoms, drawn with default_rng(seed)."""
    small = [i for i, a in enumerate(frames) if len(a) <= max_atoms]
    picked = np.random.default_rng(seed).choice(small, size=min(n, len(small)), replace=False)
    return [frames[int(i)] for i in picked]


def conformer_frames(frames: list) -> list:
    out = []
    for k, atoms in enumerate(frames):
        copy = atoms.copy()
        copy.info = {"mol_id": atoms.info["mol_id"], "conf_id": k, "charge": 0, "spin": 1,
                     "smiles": atoms.info.get("smiles", "")}
        out.append(copy)
    return out


def label(frames: list, out: Path, perturb: int, sigma: float) -> Path:
    import ase.io

    src, db = out / "conformers.extxyz", out / "labels.db"
    ase.io.write(src, conformer_frames(frames), format="extxyz")
    cmd = [sys.executable, "-m", "molpre", "label", str(src), "-o", str(db), "--method", "hf",
           "--basis", "sto-3g", "--forces", "--workers", "1", "--threads", "1",
           "--perturb", str(perturb), "--perturb-sigma", str(sigma)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:],
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return db


def train(db: Path, out: Path, test_ids: list[str], minutes: float, seed: int,
          lr: float = 3e-3, batch_size: int = 8):
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    ids = out / "test_ids.txt"
    ids.write_text("\n".join(test_ids) + "\n")
    config = FinetuneConfig(data=str(db), target="energy", unit="eV", test_ids=str(ids),
                            val_fraction=0.1, epochs=10_000, patience=200,
                            batch_size=batch_size, lr=lr, max_minutes=minutes, threads=1, seed=seed,
                            out=str(out / "model"), progress=False, log_model=False,
                            accelerator="cpu")
    result = finetune(config)
    return result


def inchikey(atoms) -> str:
    """InChIKey of ``atoms`` from RDKit bond perception (molpre.chem), or ``error: ...``."""
    from molpre.chem.molecules import record_from_mol
    from molpre.chem.xyz import mol_from_atoms

    try:
        record = record_from_mol(mol_from_atoms(atoms), "bfgs")
    except ValueError as err:
        return f"error: {err}"
    return record.inchikey or f"error: {record.reason}"


def closest_pair(atoms) -> float:
    d = atoms.get_all_distances()
    return float(d[np.triu_indices(len(atoms), 1)].min())


def relax(atoms, calc, fmax: float = 0.05, steps: int = 200) -> dict:
    from ase.optimize import BFGS

    atoms = atoms.copy()
    start = atoms.positions.copy()
    atoms.calc = calc
    before_key, e0 = inchikey(atoms), atoms.get_potential_energy()
    opt = BFGS(atoms, logfile=None)
    converged = opt.run(fmax=fmax, steps=steps)
    return {"mol_id": atoms.info.get("mol_id", "?"), "atoms": len(atoms),
            "steps": opt.get_number_of_steps(), "converged": bool(converged),
            "energy_change_ev": float(atoms.get_potential_energy() - e0),
            "same_inchikey": inchikey(atoms) == before_key and not before_key.startswith("error"),
            "closest_pair_a": closest_pair(atoms),
            "max_displacement_a": float(np.linalg.norm(atoms.positions - start, axis=1).max())}


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    print("| molecule | atoms | set | steps | converged | energy change (eV) | same InChIKey | "
          "closest pair (A) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mol_id']} | {r['atoms']} | {r['set']} | {r['steps']} | "
              f"{'yes' if r['converged'] else 'no'} | {r['energy_change_ev']:+.3f} | "
              f"{'yes' if r['same_inchikey'] else 'no'} | {r['closest_pair_a']:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bfgs-out"))
    parser.add_argument("--data", type=Path, default=QM9)
    parser.add_argument("--train", type=int, default=30, help="molecules to label")
    parser.add_argument("--max-atoms", type=int, default=12)
    parser.add_argument("--perturb", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--bfgs", type=int, default=5)
    parser.add_argument("--unseen", action="store_true", help="also relax unseen molecules")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    frames = read_qm9(args.data)
    chosen = choose(frames, args.train + 3, args.max_atoms, args.seed)
    labeled, test = chosen[:args.train], chosen[args.train:]
    db = label(labeled + test, args.out, args.perturb, args.sigma)
    result = train(db, args.out, [a.info["mol_id"] for a in test], args.minutes, args.seed,
                   args.lr, args.batch_size)
    keep = ("test_mae_mev", "test_forces_mae_mev_per_a", "best_val_mae_mev",
            "best_val_forces_mae_mev_per_a")
    print("model:", {k: round(result.metrics[k], 1) for k in keep if k in result.metrics},
          f"epochs {len(result.history)}", flush=True)
    from molpre.inference.calculator import MolpreCalculator

    model = result.model.double().eval()
    calc = MolpreCalculator(model, float(model.encoder.config.cutoff))
    seen = {a.info["mol_id"] for a in labeled}
    rows = [{**relax(a, calc), "set": "train/val"} for a in labeled[:args.bfgs]]
    print_table(rows, f"BFGS (fmax 0.05, <= 200 steps), HF/STO-3G-trained model, {args.train} "
                      f"molecules x {args.perturb + 1} geometries")
    if args.unseen:
        others = [a for a in choose(frames, 200, args.max_atoms, args.seed + 1)
                  if a.info["mol_id"] not in seen][:args.bfgs]
        unseen = [{**relax(a, calc), "set": "unseen"} for a in others
                  if set(a.numbers) <= set(model.elements)]
        print_table(unseen, "BFGS from molecules the model never saw")
        rows += unseen
    (args.out / "bfgs_table.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
