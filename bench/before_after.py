"""Today's molpre against an older one, same bench, same machine, rounds interleaved.

    git archive <old-commit> molpre | tar -x -C /tmp/molpre_old
    python bench/before_after.py --before /tmp/molpre_old --shards runs/moses_shards

Runs, with ``PYTHONPATH`` set to the old tree and to this checkout in turn (old, new, old,
new, ...: load drifts hit both alike), ``--threads`` threads each (default 1):

* ``pretrain``: bench/pretrain_scale.py part 1, conformers/s of mask + contrast + denoise
  pretraining steps (small preset) on ``--shards``;
* ``predictor``: bench/screening.py ``--model-only``, the Predictor's conformers/s on ASE
  conformers of MOSES molecules (no RDKit in the timing);
* ``train`` / ``inference``: bench/molpre_step.py (256 QM9-sample molecules, batch 32),
  energy + forces training steps and energy + forces inference, conformers per CPU-second.

Prints each round's numbers with the 1-minute load average and the ratio new / old of the
best rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = next((p / "shared" / "data" / "qm9_sample3000.extxyz.gz" for p in BENCH.parents
             if (p / "shared" / "data").is_dir()), Path("qm9_sample3000.extxyz.gz"))


def pretrain_cmd(args) -> list[str]:
    return [str(BENCH / "pretrain_scale.py"), "--shards", str(args.shards), "--skip", "2,3",
            "--steps", str(args.steps), "--batch-size", str(args.batch_size)]


def pretrain_rate(stdout: str) -> float:
    return float(re.search(r"\| mask\+contrast\+denoise \| ([\d.]+) \|", stdout).group(1))


def predictor_cmd(args) -> list[str]:
    return [str(BENCH / "screening.py"), "--model-only", "--molecules", str(args.molecules),
            "--repeats", "2", "--threads", str(args.threads)]


def predictor_rate(stdout: str) -> float:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("model only"))
    return float(line.split()[-4])


def steps_cmd(args) -> list[str]:
    return [str(BENCH / "molpre_step.py"), "--data", str(DATA), "--rounds", "2"]


def train_rate(stdout: str) -> float:
    return max(json.loads(stdout.strip().splitlines()[-1])["train_cpu"])


def inference_rate(stdout: str) -> float:
    return max(json.loads(stdout.strip().splitlines()[-1])["inference_cpu"])


BENCHES = {"pretrain": (pretrain_cmd, pretrain_rate), "predictor": (predictor_cmd, predictor_rate),
           "train": (steps_cmd, train_rate), "inference": (steps_cmd, inference_rate)}


def run(tree: Path, cmd: list[str], threads: int) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env,
                          cwd=BENCH.parent)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="folder holding the old molpre/")
    parser.add_argument("--shards", type=Path, help="shard corpus for the pretraining bench")
    parser.add_argument("--benches", default="pretrain,predictor")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--molecules", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each run")
    args = parser.parse_args()
    print(f"{args.threads} thread(s) a run; MOLPRE_COMPILE={os.environ.get('MOLPRE_COMPILE', '')!r}")
    trees = {"before": args.before, "after": BENCH.parent}
    for name in args.benches.split(","):
        make_cmd, parse = BENCHES[name]
        best = {"before": 0.0, "after": 0.0}
        print(f"\n| {name} round | tree | conformers/s | load |\n|---|---|---|---|")
        for r in range(args.rounds):
            for label, tree in trees.items():
                load = os.getloadavg()[0]
                rate = parse(run(tree, make_cmd(args), args.threads))
                best[label] = max(best[label], rate)
                print(f"| {r + 1} | {label} | {rate:.1f} | {load:.2f} |", flush=True)
        print(f"\n{name}: after / before (best rounds) = {best['after'] / best['before']:.2f}")


if __name__ == "__main__":
    main()
