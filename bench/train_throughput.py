"""Throughput of molpre vs MACE vs NequIP at equal parameter count: training and inference.

    python bench/train_throughput.py --mace-python /work/venv-mace/bin/python \\
        --nequip-python /work/venv-nequip/bin/python [--threads 1,2] [--rounds 3]

Every model runs as a subprocess of its own interpreter (bench/molpre_step.py,
bench/mace_step.py, bench/nequip_step.py: mace-torch pins e3nn 0.4.4, so each peer lives in
its own virtual environment), on the same ``--n`` QM9-sample molecules, batch size, cutoff,
lmax, layers and radial-MLP width, with ``OMP_NUM_THREADS`` and ``torch.set_num_threads``
pinned to each thread count. The peers' channel counts are chosen so their parameter count
is the closest to molpre's (within 10%, else the run says so). Rounds are interleaved
(molpre, MACE, NequIP, molpre, ...) so load drifts hit all three alike; the table shows the
best round (least disturbed) and the median, and the ratios molpre / peer of the best rounds.
``--compiled`` adds ``molpre-c``: the same model with ``MOLPRE_COMPILE=1`` (compiled blocks,
energy + forces in one compiled graph; its compile, 1-2 minutes, runs in the warm-up steps),
and ``NequIP-c``: NequIP in its own train-time compile mode. MACE runs eagerly.

* training: energy + forces by autograd, energy MSE + force MSE, backward (a double
  backward), Adam step; conformers/s.
* inference: eval mode, energies + forces; conformers/s.
* ``train_cpu`` / ``inference_cpu`` (1 thread only): conformers per CPU-second of the child
  process, which other load on the machine barely moves: the fairer ratio on a shared box.

Make the peers' venvs once (torch first, so pip keeps the CPU wheel):
``python3.11 -m venv /work/venv-mace && /work/venv-mace/bin/pip install torch==2.13.0 &&
/work/venv-mace/bin/pip install mace-torch`` and the same with ``nequip``. The machine is often
shared: the 1-minute load average is printed beside every block; 2-thread timings only mean
something while the load stays below the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PASSIVE = False  # --passive-wait
DATA = next((p / "shared" / "data" / "qm9_sample3000.extxyz.gz" for p in BENCH.parents
             if (p / "shared" / "data").is_dir()), Path("qm9_sample3000.extxyz.gz"))


def preset_config(preset: str) -> dict:
    sys.path.insert(0, str(BENCH.parent))
    from molpre.models.presets import resolve_config

    return resolve_config(preset).to_dict()


def run(python: str, script: str, args: list[str], threads: int,
        extra_env: dict | None = None) -> dict:
    """One child run; its JSON line (raises with the child's last stderr line on failure)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=str(BENCH.parent), **(extra_env or {}))
    if PASSIVE:  # threads sleep instead of spinning while they wait (shared, overloaded boxes)
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    proc = subprocess.run([python, str(BENCH / script), *args], capture_output=True, text=True,
                          env=env, cwd=BENCH.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_args(config: dict, channels: int, args) -> list[str]:
    return ["--batch_size", str(args.batch_size), "--channels", str(channels),
            "--lmax", str(config["lmax"]), "--layers", str(config["num_layers"]),
            "--cutoff", str(config["cutoff"]), "--radial_width", str(config["radial_mlp_width"]),
            "--avg_num_neighbors", str(config["avg_num_neighbors"])]


def match_channels(python: str, script: str, config: dict, target: int, args) -> tuple[int, int]:
    """(channels, params) of the peer whose parameter count is closest to ``target``."""
    extra = ["--max_ell", str(config["lmax"])] if script == "mace_step.py" else []

    def count(channels: int) -> int:
        return run(python, script, [*peer_args(config, channels, args), *extra, "--warmup", "0",
                                    "--threads", "1", "--rounds", "0", "--params-only"], 1)["params"]

    channels = int(config["channels"])  # walk by 2 channels from molpre's width towards target
    tried = {channels: count(channels)}
    step = 2 if tried[channels] < target else -2
    while 4 <= channels + step <= 256:
        channels += step
        tried[channels] = count(channels)
        if (tried[channels] - target) * step > 0:
            break
    return min(tried.items(), key=lambda item: abs(item[1] - target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=256, help="conformers timed per model and round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--mace-python", default=None)
    parser.add_argument("--nequip-python", default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_smoke.py)")
    parser.add_argument("--compiled", action="store_true",
                        help="also time molpre with MOLPRE_COMPILE=1 (torch.compile of the "
                             "blocks and of energy + forces; compile time is not timed)")
    parser.add_argument("--passive-wait", action="store_true",
                        help="OMP_WAIT_POLICY=PASSIVE for every model: on a machine loaded past "
                             "its cores, spinning OpenMP threads make 2-thread runs collapse")
    args = parser.parse_args()
    global PASSIVE
    PASSIVE = args.passive_wait
    config = preset_config(args.preset)
    common = ["--data", str(args.data), "--n", str(args.n), "--warmup", str(args.warmup),
              "--rounds", "1", "--device", args.device]
    ours = run(sys.executable, "molpre_step.py", ["--data", str(args.data), "--n", "8",
                                                  "--preset", args.preset, "--params-only"], 1)
    models = {"molpre": (sys.executable, "molpre_step.py",
                         ["--preset", args.preset, "--batch_size", str(args.batch_size)],
                         ours["params"], "")}
    if args.compiled:
        models["molpre-c"] = (*models["molpre"][:4], "MOLPRE_COMPILE=1")
    for name, python, script in (("MACE", args.mace_python, "mace_step.py"),
                                 ("NequIP", args.nequip_python, "nequip_step.py")):
        if not python or not Path(python).exists():
            print(f"note: no --{name.lower()}-python (or not found): {name} skipped")
            continue
        channels, params = match_channels(python, script, config, ours["params"], args)
        extra = ["--max_ell", str(config["lmax"])] if name == "MACE" else []
        models[name] = (python, script, [*peer_args(config, channels, args), *extra], params,
                        f"{channels} channels")
        if args.compiled and name == "NequIP":  # nequip's own train-time compile mode
            models["NequIP-c"] = (python, script, [*peer_args(config, channels, args), "--compile"],
                                  params, f"{channels} channels, compile_mode=compile")
    print(f"{args.n} QM9-sample conformers, batch {args.batch_size}, preset {args.preset} "
          f"(lmax {config['lmax']}, {config['num_layers']} layers, cutoff {config['cutoff']} A), "
          f"{args.rounds} interleaved rounds, best (median), device {args.device}")
    for name, (_, _, _, params, note) in models.items():
        off = 100.0 * (params / ours["params"] - 1.0)
        flag = "" if abs(off) <= 10 else "  NOT within 10%"
        print(f"  {name:7} {params:7d} parameters {note} ({off:+.1f}% vs molpre){flag}")
    for threads in [int(t) for t in args.threads.split(",")]:
        load = os.getloadavg()[0]
        modes = ("train", "inference", "train_cpu", "inference_cpu")
        results = {name: {mode: [] for mode in modes} for name in models}
        for _ in range(args.rounds):
            for name, (python, script, margs, _, note) in models.items():
                env = {"MOLPRE_COMPILE": "1" if note == "MOLPRE_COMPILE=1" else "0"}
                out = run(python, script, [*common, *margs, "--threads", str(threads)], threads,
                          env)
                for mode in modes:
                    results[name][mode].extend(out.get(mode, []))
        print(f"\n{threads} thread(s), load average {load:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after")
        print_table(results, ("train", "inference") + (("train_cpu", "inference_cpu")
                                                        if threads == 1 else ()))


def print_table(results: dict, modes: tuple[str, ...]) -> None:
    """Markdown table; ``*_cpu`` rows are conformers per CPU-second of the process (at one
    thread, what the kernels cost whatever else the machine runs)."""
    names = list(results)
    ours = [n for n in names if n.startswith("molpre")]
    peers = [n for n in names if n not in ours]
    pairs = [(o, p) for o in ours for p in peers] + [(o, "molpre") for o in ours[1:]]
    print(f"| mode | {' | '.join(f'{n} conf/s' for n in names)} | "
          f"{' | '.join(f'{o} / {p}' for o, p in pairs)} |")
    print("|---" * (1 + len(names) + len(pairs)) + "|")
    for mode in modes:
        cells = [f"{max(results[n][mode]):.1f} ({statistics.median(results[n][mode]):.1f})"
                 for n in names]
        ratios = [f"{max(results[o][mode]) / max(results[p][mode]):.2f}" for o, p in pairs]
        print(f"| {mode} | {' | '.join(cells)} | {' | '.join(ratios)} |", flush=True)


if __name__ == "__main__":
    main()
