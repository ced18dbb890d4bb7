"""Benchmark screening: Predictor.predict on SMILES against RDKit ETKDGv3 + MMFF alone.

    python bench/screening.py                          # 100 MOSES SMILES, a tiny model trained here
    python bench/screening.py --model out/ft --molecules 200 --conformers 3

Rows of the table (molecules/s over all ``--molecules`` inputs, wall clock):

* ``rdkit ETKDGv3+MMFF``: bench/conformers.py's plain RDKit loop (parse, AddHs, ETKDGv3 with
  molpre's seed, pruning and timeout, MMFF94), the same ``--conformers`` per molecule, one
  process: the floor any screening tool pays.
* ``Predictor.predict, workers=1|2``: SMILES in, result table out (intake, standardization,
  conformers on ``workers`` processes, model, aggregation); the target is >= 0.9x RDKit with
  one worker and >= 1.8x with two.
* ``model only``: the model's own conformers/s on the same conformers given as ASE Atoms (no
  RDKit), batch ``--batch-size``; a committee's cost is K times one member's.

The CPU is often shared: the 1-minute load average (``os.getloadavg``) is printed beside
every run, and worker scaling only means something when it is below the core count. Without
``--model`` a tiny model (small preset, 5 epochs on 60 QM9-sample molecules) is trained first
in a temporary folder (not timed). MOSES molecules with S, Cl or Br still get their
conformers (the same work as RDKit's) and then an error row: the model was trained on
H, C, N, O, F only; ``ok`` counts the rows with a prediction.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
              ROOT.parent / "shared" / "data")  # worktrees nest deeper
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformers import moses_smiles, plain_rdkit_loop  # noqa: E402  (bench/conformers.py)


def load() -> float:
    return os.getloadavg()[0]


def tiny_model(folder: Path) -> Path:
    """Train a small-preset model for 5 epochs on 60 QM9-sample molecules; its folder."""
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    from molpre.data.datasets import load_labeled
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    data = load_labeled(SHARED / "qm9_sample3000.extxyz.gz", "u0_atom", "kcal/mol").subset(range(80))
    config = FinetuneConfig(data="qm9-sample", target="u0_atom", unit="kcal/mol", budget=60,
                            epochs=5, batch_size=8, out=str(folder / "ft"), progress=False,
                            threads=1, log_model=False)
    return finetune(config, data=data).out


def time_predict(predictor, smiles: list[str], workers: int) -> tuple[float, int, int]:
    """(wall seconds, ok rows, conformers) of one Predictor.predict over ``smiles``."""
    predictor.configure(workers=workers)
    start = time.perf_counter()
    df = predictor.predict(smiles)
    wall = time.perf_counter() - start
    ok = df["status"] == "ok"
    return wall, int(ok.sum()), int(df.loc[ok, "n_conformers"].sum())


def conformer_atoms(smiles: list[str], n: int, seed: int) -> list:
    """The conformers molpre makes for ``smiles`` (ASE Atoms; failures dropped)."""
    from molpre.chem import conformer_stream, record_from_smiles

    records = [record_from_smiles(s, f"m{i}") for i, s in enumerate(smiles)]
    return [a for out in conformer_stream([r for r in records if r.ok], n=n, seed=seed)
            if out.ok for a in out.conformers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model source (default: train a tiny one here)")
    parser.add_argument("--molecules", type=int, default=100)
    parser.add_argument("--conformers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-only", action="store_true",
                        help="only the 'model only' row (skip the RDKit and SMILES rows)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time the model-only row this many times; the best is shown")
    args = parser.parse_args()

    import torch

    from molpre import Predictor  # the public name, in old trees too (bench/before_after.py)

    torch.set_num_threads(args.threads)
    smiles = moses_smiles(args.molecules)
    with tempfile.TemporaryDirectory(prefix="molpre-screening-") as tmp:
        source = args.model or tiny_model(Path(tmp))
        predictor = Predictor.load(source, device="cpu", n_conformers=args.conformers,
                                   seed=args.seed, progress=False, batch_size=args.batch_size)
        rows = []
        rd_wall = None
        if not args.model_only:
            before = load()
            confs, rd_wall, _ = plain_rdkit_loop(smiles, args.conformers, args.seed)
            rows.append(("rdkit ETKDGv3+MMFF", rd_wall, len(smiles), confs, before))
            for workers in (1, 2):
                before = load()
                wall, ok, n_conf = time_predict(predictor, smiles, workers)
                rows.append((f"Predictor.predict, workers={workers}", wall, ok, n_conf, before))
        atoms = conformer_atoms(smiles, args.conformers, args.seed)
        predictor.configure(workers=1)
        before = load()
        model_wall = float("inf")
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            model_df = predictor.predict(atoms)
            model_wall = min(model_wall, time.perf_counter() - start)
        model_ok = int((model_df["status"] == "ok").sum())
    committee = f" (committee of {predictor.model.size})" if predictor.is_committee else ""
    print(f"screening: {len(smiles)} MOSES SMILES, {args.conformers} conformers/molecule, seed "
          f"{args.seed}, model {args.model or 'tiny (trained here)'}"
          f"{committee}, "
          f"{os.cpu_count()} CPUs, {args.threads} torch thread(s)")
    print("(ok: rows with a prediction; confs: their conformers, all for rdkit)")
    print(f"{'run':<30} {'wall s':>8} {'mol/s':>8} {'x rdkit':>8} {'ok':>5} {'confs':>6} {'load':>5}")
    for name, wall, ok, n_conf, before in rows:  # empty with --model-only
        rate = len(smiles) / wall
        print(f"{name:<30} {wall:8.2f} {rate:8.2f} {rate / (len(smiles) / rd_wall):8.2f} "
              f"{ok:5d} {n_conf:6d} {before:5.2f}")
    print(f"{'model only (conformers/s)':<30} {model_wall:8.2f} {len(atoms) / model_wall:8.1f} "
          f"{'':>8} {model_ok:5d} {len(atoms):6d} {before:5.2f}")
    print(f"load average after: {load():.2f}")


if __name__ == "__main__":
    main()
