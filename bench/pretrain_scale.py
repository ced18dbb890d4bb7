"""Pretraining at scale: throughput per objective, flat memory in corpus size, shard build cost.

    python bench/pretrain_scale.py --shards runs/moses6500_shards [--steps 20] [--rss-steps 30]

1. conformers/s of a training step (corrupt + encoder + heads + backward + AdamW, small
   preset, batch of --batch-size molecules) for each objective alone and all three combined
   (or the sets of --objectives), timed on a second pass over the same --steps batches (the
   first pass compiles what a --compiled run needs).
2. peak RSS of a whole `pretrain()` run (subprocess, fixed step count, no probe) over a
   10k- and a 100k-molecule shard corpus. Both corpora are made from the given real MOSES
   shards, replicated with renumbered molecule indices (conformer building for 100k
   molecules is CPU-days here); streaming memory depends on shard size and corpus length,
   not on which molecules the shards hold.
3. shard build time (conformers + MMFF + write, 1 worker) measured on --build-molecules
   MOSES molecules and extrapolated to 10k.
Prints markdown tables. Timings on a shared 2-core machine: read them as rough.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOSES = Path(__file__).resolve().parents[2] / "shared" / "data" / "moses_train.csv.gz"
OBJECTIVE_SETS = [("mask",), ("contrast",), ("denoise",), ("mask", "contrast", "denoise")]


def throughput(shards: Path, names: tuple[str, ...], steps: int, batch_size: int,
               compiled: bool = False) -> float:
    """Conformers per second of full training steps for the objectives ``names`` (eager, or
    ``compiled``: ``Encoder.compile_blocks()``, whose compile runs in the warm-up steps)."""
    import torch

    from molpre.data.shard_stream import ShardDataset, collate_views
    from molpre.models.presets import resolve_config
    from molpre.train.pretrain_module import PretrainModule

    objectives = {n: {"weight": float(n in names)} for n in ("mask", "contrast", "denoise")}
    objectives.update({n: {"weight": 1.0} for n in names})
    torch.manual_seed(0)
    module = PretrainModule(resolve_config("small").to_dict(), objectives)
    module.encoder.compile_blocks(compiled)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    data = ShardDataset(shards, 4.5, views=module.views, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, collate_fn=collate_views)
    batches = list(itertools.islice(iter(loader), steps))

    def step(batch):
        loss = module.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for batch in batches:  # warm-up pass: every graph a compiled run needs is compiled here
        step(batch)       # (a batch crossing one of Inductor's size guards compiles a second)
    conformers, start = 0, time.perf_counter()
    for batch in batches:
        step(batch)
        conformers += int(batch["num_graphs"])
    return conformers / (time.perf_counter() - start)


def replicate(source: Path, target: Path, molecules: int) -> Path:
    """A shard directory of ``molecules`` molecules, cycling the source shards."""
    from molpre.data.shards import FORMAT, MANIFEST, read_manifest

    manifest = read_manifest(source)
    target.mkdir(parents=True, exist_ok=True)
    shards, count, conformers = [], 0, 0
    for i, entry in enumerate(itertools.cycle(manifest["shards"])):
        if count >= molecules:
            break
        with np.load(source / entry["file"]) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["mol_index"] = np.arange(count, count + len(arrays["n_atoms"]), dtype=np.int64)
        name = f"shard-{i:05d}.npz"
        np.savez(target / name, **arrays)
        shards.append({"file": name, "molecules": int(len(arrays["n_atoms"])),
                       "conformers": int(arrays["n_conf"].sum())})
        count += shards[-1]["molecules"]
        conformers += shards[-1]["conformers"]
    (target / MANIFEST).write_text(json.dumps({"format": FORMAT, "molecules": count,
                                               "conformers": conformers, "shards": shards}))
    return target


RUN = """
import json, sys
from molpre.train.pretrain import pretrain
shards, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = pretrain({"output": out, "seed": 1, "corpus": {"shards": shards, "max_molecules": None},
              "train": {"batch_size": 16, "max_steps": steps, "epochs": 1, "progress": False,
                        "shuffle_buffer": 512},
              "monitor": {"every_n_steps": 10, "molecules": 64}})
# VmHWM: this process's own peak RSS (ru_maxrss would keep the forking parent's across exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"steps": r.global_step, "rss_mb": int(hwm.split()[1]) / 1024}))
"""


def peak_rss(shards: Path, steps: int, workdir: Path) -> dict:
    """Peak RSS (MB) and wall time of a pretrain() run in a fresh subprocess."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN, str(shards), str(workdir / shards.name),
                           str(steps)], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def build_time(molecules: int, workdir: Path) -> dict:
    """Seconds to build shards for ``molecules`` MOSES molecules (4 conformers, 1 worker)."""
    from molpre.chem import read_molecules
    from molpre.data.shards import build_shards

    start = time.perf_counter()
    records = itertools.islice(read_molecules(MOSES), molecules)
    manifest = build_shards(records, workdir / "build", conformers=4, seed=1, workers=1,
                            progress=False)
    seconds = time.perf_counter() - start
    return {"molecules": manifest["molecules"] + manifest["failed"],
            "conformers": manifest["conformers"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, required=True, help="real MOSES shard directory")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rss-steps", type=int, default=30)
    parser.add_argument("--build-molecules", type=int, default=100)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: 1,2,3")
    parser.add_argument("--objectives", default=None,
                        help="part 1's objective sets, e.g. 'cheap_energy+cheap_forces,mask' "
                             "(default: each of mask, contrast, denoise and the three; the cheap "
                             "objectives need a labeled corpus, workflows/corpus_xtb.yaml)")
    parser.add_argument("--compiled", action="store_true",
                        help="part 1 also with the compiled encoder (MOLPRE_COMPILE's path; "
                             "compile time not timed), rounds interleaved with eager")
    parser.add_argument("--rounds", type=int, default=1, help="part 1's rounds per set")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    skip = set(args.skip.split(","))
    if "1" not in skip:
        sets = (OBJECTIVE_SETS if not args.objectives else
                [tuple(s.split("+")) for s in args.objectives.split(",")])
        modes = (False, True) if args.compiled else (False,)
        print(f"\nload average {os.getloadavg()[0]:.2f}, {os.environ['OMP_NUM_THREADS']} thread(s)")
        print(f"\n| objectives | conformers/s (small preset, {args.batch_size} mol/batch) |"
              + (" compiled | compiled / eager |" if args.compiled else ""))
        print("|---|---|" + ("---|---|" if args.compiled else ""))
        for names in sets:
            rates = {mode: [] for mode in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    rates[mode].append(throughput(args.shards, names, args.steps,
                                                  args.batch_size, mode))
            cells = [f"{max(rates[m]):.1f}" for m in modes]
            if args.compiled:
                cells.append(f"{max(rates[True]) / max(rates[False]):.2f}")
            print(f"| {'+'.join(names)} | {' | '.join(cells)} |", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} after")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "2" not in skip:
            print("\n| corpus molecules | steps | peak RSS MB | wall s |\n|---|---|---|---|")
            rss = {}
            for n in (10_000, 100_000):
                corpus = replicate(args.shards, tmp / f"corpus{n}", n)
                res = peak_rss(corpus, args.rss_steps, tmp)
                rss[n] = res["rss_mb"]
                print(f"| {n} | {res['steps']} | {res['rss_mb']:.0f} | {res['wall_s']:.0f} |",
                      flush=True)
            print(f"\nRSS ratio 100k/10k: {rss[100_000] / rss[10_000]:.3f} (target <= 1.3)")
        if "3" not in skip:
            res = build_time(args.build_molecules, tmp)
            per10k = res["seconds"] / res["molecules"] * 10_000
            print("\n| build molecules | conformers | seconds | extrapolated s per 10k |")
            print(f"|---|---|---|---|\n| {res['molecules']} | {res['conformers']} | "
                  f"{res['seconds']:.1f} | {per10k:.0f} |")
    print(f"\n(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB)")


if __name__ == "__main__":
    main()
