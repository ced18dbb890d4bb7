"""Training-step throughput (conformers/s) of molpre's EnergyModel vs MACE on the QM9 sample.

One step = forward with forces by autograd, loss = energy MSE + force MSE (a double
backward), backward, Adam step; 2 threads. MACE (mace-torch, which pins e3nn 0.4.4) runs in
its own virtual environment as a subprocess (bench/mace_step.py), with matched channels,
hidden lmax, layers, cutoff and radial-MLP width, on the same molecules and batch size.

    python bench/train_throughput.py --mace-python /tmp/mace-venv/bin/python

Make the MACE venv once, clean (no --system-site-packages: molpre's e3nn would shadow 0.4.4):
``python -m venv /tmp/mace-venv && /tmp/mace-venv/bin/pip install torch==2.13.0 mace-torch``.
On a loaded machine 2-thread timings suffer from OpenMP threads waiting on busy cores (both
models alike); ``--threads 1`` shows the kernels' own speed. MACE runs with its sh lmax equal
to the preset's lmax unless ``--mace-max-ell`` says otherwise (MACE's own default is 3).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import torch

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.atomref import fit_atomref
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_sample3000.extxyz.gz"
EV_PER_KCAL = 0.0433641


def molpre_throughput(frames, preset: str, batch_size: int, warmup: int, rounds: int) -> tuple[list[float], int]:
    """Conformers/s of training steps over all ``frames`` (one rate per round) after ``warmup`` steps."""
    torch.manual_seed(0)
    encoder = build_encoder(preset)
    energies = [a.info["u0_atom"] * EV_PER_KCAL for a in frames]
    atomref = fit_atomref([a.get_atomic_numbers() for a in frames], energies)
    model = EnergyModel(encoder, atomref, energy_scale=0.1)
    samples = [atoms_to_sample(a, encoder.config.cutoff, energy=e, forces=torch.zeros(len(a), 3).numpy())
               for a, e in zip(frames, energies, strict=True)]
    batches = [collate(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        opt.zero_grad()
        out = model(batch, compute_forces=True)
        loss = (out[keys.PREDICTED_ENERGY] - batch[keys.ENERGY]).pow(2).mean()
        loss = loss + (out[keys.PREDICTED_FORCES] - batch[keys.FORCES]).pow(2).mean()
        loss.backward()
        opt.step()

    for batch in batches[:warmup]:
        step(batch)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            step(batch)
        rates.append(len(frames) / (time.perf_counter() - start))
    return rates, sum(p.numel() for p in model.parameters())


def mace_throughput(python: str, preset: str, args, max_ell: int) -> tuple[list[float], int] | None:
    """Run bench/mace_step.py in the MACE venv with the preset's width/cutoff; None if it fails."""
    c = build_encoder(preset).config
    cmd = [python, str(Path(__file__).with_name("mace_step.py")), "--data", str(args.data),
           "--n", str(args.n), "--batch_size", str(args.batch_size), "--channels", str(c.channels),
           "--lmax", str(c.lmax), "--max_ell", str(max_ell), "--layers", str(c.num_layers),
           "--cutoff", str(c.cutoff), "--radial_width", str(c.radial_mlp_width),
           "--avg_num_neighbors", str(c.avg_num_neighbors), "--warmup", str(args.warmup),
           "--threads", str(args.threads), "--rounds", str(args.rounds)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"MACE run failed for {preset}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["conformers_per_s"], result["params"]


def _fmt(rates: list[float]) -> str:
    return f"{max(rates):.1f} ({statistics.median(rates):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="QM9 sample extxyz.gz")
    parser.add_argument("--n", type=int, default=256, help="conformers timed per model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed passes over the data; the table shows the best (least disturbed)")
    parser.add_argument("--presets", default="small,medium")
    parser.add_argument("--mace-python", default=None, help="python of a venv with mace-torch")
    parser.add_argument("--mace-max-ell", type=int, default=None,
                        help="MACE spherical-harmonic lmax (default: the preset's lmax)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = ase.io.read(gzip.open(args.data, "rt"), index=f":{args.n}", format="extxyz")
    mace_ok = args.mace_python and Path(args.mace_python).exists()
    if not mace_ok:
        print("note: no --mace-python given (or not found); MACE column skipped")
    print(f"{args.n} QM9 conformers, batch {args.batch_size}, {args.threads} threads, "
          f"best of {args.rounds} rounds (median in brackets); energy+forces loss, Adam step")
    print(f"{'preset':8} {'params':>8} {'molpre conf/s':>20} {'MACE params':>12} {'MACE conf/s':>20} {'ratio':>6}")
    for preset in args.presets.split(","):
        ours, params = molpre_throughput(frames, preset, args.batch_size, args.warmup, args.rounds)
        row = f"{preset:8} {params:8d} {_fmt(ours):>20}"
        if mace_ok:
            lmax = build_encoder(preset).config.lmax
            mace = mace_throughput(args.mace_python, preset, args, args.mace_max_ell or lmax)
            if mace:
                row += f" {mace[1]:12d} {_fmt(mace[0]):>20} {max(ours) / max(mace[0]):6.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
