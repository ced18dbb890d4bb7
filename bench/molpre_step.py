"""molpre half of bench/train_throughput.py (the same JSON contract as mace_step.py and
nequip_step.py): ``{"params", "train", "inference"}``, conformers/s, one rate per round.

Training step: EnergyModel (preset encoder, energy head, ZBL) forward with forces by autograd,
energy + force MSE, backward (a double backward), Adam step. Inference: eval mode, energies
and forces (no graph kept). Graphs are built once, before timing, as the peers' are.

    python bench/molpre_step.py --preset small --batch_size 32 --threads 2 --rounds 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

import ase.io
import torch

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.atomref import fit_atomref
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

EV_PER_KCAL = 0.0433641


def build(frames, preset: str, batch_size: int):
    """(model, batches): a fresh small model and collated batches with labels (eV, eV/A)."""
    torch.manual_seed(0)
    encoder = build_encoder(preset)
    energies = [a.info["u0_atom"] * EV_PER_KCAL for a in frames]
    atomref = fit_atomref([a.get_atomic_numbers() for a in frames], energies)
    model = EnergyModel(encoder, atomref, energy_scale=0.1)
    samples = [atoms_to_sample(a, encoder.config.cutoff, energy=e,
                               forces=torch.zeros(len(a), 3).numpy())
               for a, e in zip(frames, energies, strict=True)]
    return model, [collate(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)]


def rates(step, batches, warmup: int, rounds: int, n: int, sync=lambda: None,
          cpu: list | None = None) -> list[float]:
    """Conformers/s of ``step`` over all ``batches``, one rate per round, after ``warmup`` steps
    (``sync``: waits for the device, e.g. ``torch.cuda.synchronize``)."""
    for batch in batches[:warmup]:
        step(batch)
    out = []
    for _ in range(rounds):
        sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            step(batch)
        sync()
        out.append(n / (time.perf_counter() - start))
        if cpu is not None:  # per CPU-second of this process: robust to other load at 1 thread
            cpu.append(n / (time.process_time() - start_cpu))
    return out


def to_device(batch: dict, device: str) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = ase.io.read(gzip.open(args.data, "rt"), index=f":{args.n}", format="extxyz")
    model, batches = build(frames, args.preset, args.batch_size)
    model = model.to(args.device)
    batches = [to_device(b, args.device) for b in batches]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    params = sum(p.numel() for p in model.parameters())
    if args.params_only:
        print(json.dumps({"params": params}))
        return
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(batch):
        opt.zero_grad()
        out = model(batch, compute_forces=True)
        loss = (out[keys.PREDICTED_ENERGY] - batch[keys.ENERGY]).pow(2).mean()
        loss = loss + (out[keys.PREDICTED_FORCES] - batch[keys.FORCES]).pow(2).mean()
        loss.backward()
        opt.step()

    def infer(batch):
        with torch.no_grad():
            out = model(batch, compute_forces=True)
        return out[keys.PREDICTED_ENERGY], out[keys.PREDICTED_FORCES]

    cpu = {"train": [], "inference": []}
    train_rates = rates(train, batches, args.warmup, args.rounds, len(frames), sync, cpu["train"])
    model.eval()
    infer_rates = rates(infer, batches, args.warmup, args.rounds, len(frames), sync,
                        cpu["inference"])
    print(json.dumps({"params": params, "train": train_rates, "inference": infer_rates,
                      "train_cpu": cpu["train"], "inference_cpu": cpu["inference"]}))


if __name__ == "__main__":
    main()
