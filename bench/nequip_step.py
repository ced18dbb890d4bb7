"""NequIP half of bench/train_throughput.py; runs inside a separate venv with ``nequip``.

Prints one JSON line ``{"params", "train", "inference"}`` (conformers/s, one rate per round).
Does not import molpre. NequIPGNNModel (nequip >= 0.7) with the given features, lmax,
layers, cutoff and radial MLP; forces by autograd (its own ForceStressOutput); ``--compile``
builds it in nequip's own train-time compile mode (``compile_mode="compile"``).
``--params-only`` prints the parameter count without timing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

import ase.io
import torch
from nequip.data import AtomicDataDict, compute_neighborlist_, from_ase
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper
from nequip.model import NequIPGNNModel
from nequip.utils.global_state import set_global_state

TYPES = ["H", "C", "N", "O", "F"]


def build_model(args) -> torch.nn.Module:
    set_global_state()
    return NequIPGNNModel(
        seed=0, model_dtype="float32", compile_mode="compile" if args.compile else "eager", type_names=TYPES, r_max=args.cutoff, l_max=args.lmax,
        parity=True, num_layers=args.layers, num_features=args.channels,
        radial_mlp_depth=2, radial_mlp_width=args.radial_width,
        avg_num_neighbors=args.avg_num_neighbors, per_type_energy_shifts={t: 0.0 for t in TYPES},
        per_type_energy_scales={t: 1.0 for t in TYPES},
    )


def build_batches(frames, cutoff: float, batch_size: int) -> list[dict]:
    mapper = ChemicalSpeciesToAtomTypeMapper(model_type_names=TYPES)
    items = []
    for atoms in frames:
        data = from_ase(atoms)
        data = compute_neighborlist_(data, cutoff)
        items.append(mapper(data))
    return [AtomicDataDict.batched_from_list(items[i:i + batch_size])
            for i in range(0, len(items), batch_size)]


def rates(step, batches, warmup: int, rounds: int, n: int, sync=lambda: None,
          cpu: list | None = None) -> list[float]:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    for name, kind in [("data", str), ("n", int), ("batch_size", int), ("channels", int),
                       ("lmax", int), ("layers", int), ("cutoff", float), ("radial_width", int),
                       ("avg_num_neighbors", float), ("warmup", int), ("threads", int),
                       ("rounds", int)]:
        parser.add_argument(f"--{name}", type=kind, required=name not in ("data", "n"))
    parser.add_argument("--params-only", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="nequip's train-time compile mode (compile_mode='compile')")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model(args)
    params = sum(p.numel() for p in model.parameters())
    if args.params_only:
        print(json.dumps({"params": params}))
        return
    frames = ase.io.read(gzip.open(args.data, "rt"), index=f":{args.n}", format="extxyz")
    batches = [{k: v.to(args.device) if torch.is_tensor(v) else v for k, v in b.items()}
               for b in build_batches(frames, args.cutoff, args.batch_size)]
    model = model.to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(batch):
        opt.zero_grad()
        out = model(dict(batch))
        energy = out[AtomicDataDict.TOTAL_ENERGY_KEY].squeeze(-1)
        loss = energy.pow(2).mean() + out[AtomicDataDict.FORCE_KEY].pow(2).mean()
        loss.backward()
        opt.step()

    def infer(batch):
        out = model(dict(batch))
        return out[AtomicDataDict.TOTAL_ENERGY_KEY].detach(), out[AtomicDataDict.FORCE_KEY].detach()

    cpu = {"train": [], "inference": []}
    train_rates = rates(train, batches, args.warmup, args.rounds, len(frames), sync, cpu["train"])
    model.eval()
    infer_rates = rates(infer, batches, args.warmup, args.rounds, len(frames), sync,
                        cpu["inference"])
    print(json.dumps({"params": params, "train": train_rates, "inference": infer_rates,
                      "train_cpu": cpu["train"], "inference_cpu": cpu["inference"]}))


if __name__ == "__main__":
    main()
