"""MACE half of bench/train_throughput.py; runs inside the separate mace-torch venv.

Prints one JSON line: {"params", "train", "inference"} (conformers/s, one rate per round;
"conformers_per_s" repeats "train" for older callers). Does not import molpre (mace-torch
pins e3nn 0.4.4, molpre needs e3nn 0.6). ``--params-only``: the parameter count alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

import ase.io
import numpy as np
import torch

# e3nn 0.4.4 torch.loads its Wigner constants at import; torch >= 2.6 loads weights_only.
torch.serialization.add_safe_globals([slice])

from e3nn import o3  # noqa: E402
from mace import data, modules, tools  # noqa: E402
from mace.tools import torch_geometric  # noqa: E402


def build_batches(frames, cutoff, batch_size, z_table):
    items = []
    for atoms in frames:
        config = data.Configuration(
            atomic_numbers=atoms.get_atomic_numbers(), positions=atoms.get_positions(),
            properties={"energy": 0.0, "forces": np.zeros((len(atoms), 3))},
            property_weights={"energy": 1.0, "forces": 1.0}, pbc=(False,) * 3, cell=np.zeros((3, 3)),
        )
        items.append(data.AtomicData.from_config(config, z_table=z_table, cutoff=cutoff))
    return [torch_geometric.Batch.from_data_list(items[i:i + batch_size]).to_dict()
            for i in range(0, len(items), batch_size)]


def build_model(args, z_table):
    hidden = o3.Irreps("+".join(f"{args.channels}x{deg}{'e' if deg % 2 == 0 else 'o'}" for deg in range(args.lmax + 1)))
    return modules.ScaleShiftMACE(
        r_max=args.cutoff, num_bessel=8, num_polynomial_cutoff=5, max_ell=args.max_ell,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=args.layers, num_elements=len(z_table), hidden_irreps=hidden,
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(z_table)),
        avg_num_neighbors=args.avg_num_neighbors, atomic_numbers=z_table.zs, correlation=3,
        gate=torch.nn.functional.silu, radial_MLP=[args.radial_width] * 3,
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    for name, kind in [("data", str), ("n", int), ("batch_size", int), ("channels", int), ("lmax", int),
                       ("max_ell", int), ("layers", int), ("cutoff", float), ("radial_width", int),
                       ("avg_num_neighbors", float), ("warmup", int), ("threads", int), ("rounds", int)]:
        parser.add_argument(f"--{name}", type=kind, required=name not in ("data", "n"))
    parser.add_argument("--params-only", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.params_only:
        model = build_model(args, tools.AtomicNumberTable([1, 6, 7, 8, 9]))
        print(json.dumps({"params": sum(p.numel() for p in model.parameters())}))
        return
    frames = ase.io.read(gzip.open(args.data, "rt"), index=f":{args.n}", format="extxyz")
    z_table = tools.AtomicNumberTable([1, 6, 7, 8, 9])
    batches = [{k: v.to(args.device) if torch.is_tensor(v) else v for k, v in b.items()}
               for b in build_batches(frames, args.cutoff, args.batch_size, z_table)]
    model = build_model(args, z_table).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        opt.zero_grad()
        out = model(batch, training=True, compute_force=True)
        loss = (out["energy"] - batch["energy"]).pow(2).mean() + (out["forces"] - batch["forces"]).pow(2).mean()
        loss.backward()
        opt.step()

    def infer(batch):
        out = model(batch, training=False, compute_force=True)
        return out["energy"].detach(), out["forces"].detach()

    cpu = {"train": [], "inference": []}
    train = rates(step, batches, args.warmup, args.rounds, len(frames), sync, cpu["train"])
    model.eval()
    inference = rates(infer, batches, args.warmup, args.rounds, len(frames), sync, cpu["inference"])
    print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "train": train,
                      "inference": inference, "conformers_per_s": train,
                      "train_cpu": cpu["train"], "inference_cpu": cpu["inference"]}))


def rates(step, batches, warmup: int, rounds: int, n: int, sync=lambda: None,
          cpu: list | None = None) -> list[float]:
    """Conformers/s of ``step`` over all ``batches``, one rate per round, after ``warmup`` steps."""
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


if __name__ == "__main__":
    main()
