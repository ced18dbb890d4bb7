"""Smoke test and throughput on whatever device is here: CUDA when torch sees one, else CPU.

Runs unchanged on a laptop or a GPU node, with no data beside the checkout: 48 small
H/C/N/O molecules from SMILES, RDKit conformers (molpre's shard builder), ASE's EMT as a
stand-in label (energies and forces in a second, nothing downloaded). Then

1. ``pretrain()`` a few steps (all three objectives) and ``finetune()`` a few epochs from
   that encoder, both with ``accelerator="auto"`` (the public API, MLflow in a temp store);
2. timed loops on the device: pretraining steps, finetuning steps (energy + forces by
   autograd, a double backward) and prediction (energies and forces), in conformers/s;
3. ``Predictor`` on the finetuned model for a few SMILES (one must fail as a row).

4. with ``--mace-python`` / ``--nequip-python`` (venvs as in bench/train_throughput.py): the
   same molpre / MACE / NequIP comparison as bench/train_throughput.py, on this device.

    python bench/gpu_smoke.py                   # prints a markdown table
    python bench/gpu_smoke.py --steps 50 --batch-size 64
    python bench/gpu_smoke.py --mace-python /work/venv-mace/bin/python \
        --nequip-python /work/venv-nequip/bin/python
    python bench/gpu_smoke.py --cpu --steps 4   # the same code path on a CPU (tests, no GPU)

``MOLPRE_COMPILE=1`` times the compiled encoder blocks (prediction, pretraining) instead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SMILES = [
    "C", "CC", "CCC", "CCCC", "CC(C)C", "CCCCC", "CCO", "CCCO", "CC(C)O", "OCCO", "CO", "COC",
    "CCOCC", "CC=O", "CC(C)=O", "CCC=O", "OC=O", "CC(=O)O", "CCC(=O)O", "CN", "CCN", "CNC",
    "CN(C)C", "NCCN", "NCCO", "CC#N", "CCC#N", "C#C", "C=C", "C=CC", "C=CC=C", "c1ccccc1",
    "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "c1ccncc1", "C1CC1", "C1CCC1", "C1CCCC1", "C1CCOC1",
    "C1CCNC1", "O=C1CCCC1", "CC(N)C(=O)O", "NCC(=O)O", "CC(=O)N", "CNC=O", "OCC(O)CO", "CCOC(C)=O",
]


def device_name(force_cpu: bool = False) -> tuple[torch.device, str]:
    if torch.cuda.is_available() and not force_cpu:
        return torch.device("cuda"), f"cuda ({torch.cuda.get_device_name(0)})"
    return torch.device("cpu"), f"cpu ({torch.get_num_threads()} threads)"


def build_data(workdir: Path, conformers: int):
    """Shards of SMILES and a LabeledData of their conformers with EMT energies/forces (eV)."""
    from ase import Atoms
    from ase.calculators.emt import EMT

    from molpre.chem import records_from_smiles
    from molpre.data.datasets import LabeledData
    from molpre.data.shards import build_shards, iter_shard, read_manifest

    shards = workdir / "shards"
    build_shards(records_from_smiles(SMILES), shards, conformers=conformers, seed=0,
                 shard_size=64, progress=False)
    atoms, energy, forces, ids = [], [], [], []
    for shard in read_manifest(shards)["shards"]:
        for mol in iter_shard(shards / shard["file"]):
            for pos in mol.conformers:
                a = Atoms(numbers=mol.numbers, positions=pos)
                a.calc = EMT()
                energy.append(a.get_potential_energy())
                forces.append(a.get_forces())
                a.calc = None
                atoms.append(a)
                ids.append(f"m{mol.mol_index}")
    data = LabeledData(atoms=atoms, labels={"energy": np.asarray(energy)}, mol_ids=ids, groups=list(ids),
                       forces=forces, source="emt-smoke")
    return shards, data


def timed(step, batches: list, repeats: int) -> float:
    """Conformers/s of ``step(batch)`` over ``batches`` x ``repeats`` after one warm-up pass."""
    for batch in batches[:2]:
        step(batch)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start, count = time.perf_counter(), 0
    for _ in range(repeats):
        for batch in batches:
            step(batch)
            count += int(batch["num_graphs"])
    sync()
    return count / (time.perf_counter() - start)


def to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def pretrain_rate(shards: Path, device, batch_size: int, steps: int) -> float:
    import itertools

    from molpre.data.shard_stream import ShardDataset, collate_views
    from molpre.models.presets import resolve_config
    from molpre.train.pretrain_module import PretrainModule

    torch.manual_seed(0)
    objectives = {n: {"weight": 1.0} for n in ("mask", "contrast", "denoise")}
    module = PretrainModule(resolve_config("small").to_dict(), objectives).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    data = ShardDataset(shards, module.encoder.config.cutoff, views=module.views, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, collate_fn=collate_views)
    batches = [to(b, device) for b in itertools.islice(itertools.cycle(list(loader)), steps)]

    def step(batch):
        opt.zero_grad()
        module.losses(batch)["loss"].backward()
        opt.step()

    return timed(step, batches, 1)


def energy_batches(data, cutoff: float, batch_size: int, device) -> list[dict]:
    from molpre.data.graph import atoms_to_sample, collate

    samples = [atoms_to_sample(a, cutoff, energy=float(e), forces=f)
               for a, e, f in zip(data.atoms, data.energy, data.forces, strict=True)]
    return [to(collate(samples[i:i + batch_size]), device)
            for i in range(0, len(samples), batch_size)]


def finetune_rates(data, device, batch_size: int, steps: int) -> tuple[float, float]:
    """(training, prediction) conformers/s of the energy model with forces by autograd."""
    from molpre.data import keys
    from molpre.models.atomref import fit_atomref
    from molpre.models.energy import EnergyModel
    from molpre.models.presets import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder("small")
    atomref = fit_atomref([a.numbers for a in data.atoms], data.energy)
    model = EnergyModel(encoder, atomref, energy_scale=0.1).to(device)
    batches = energy_batches(data, encoder.config.cutoff, batch_size, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    repeats = max(1, steps // len(batches))

    def train_step(batch):
        opt.zero_grad()
        out = model(batch, compute_forces=True)
        loss = (out[keys.PREDICTED_ENERGY] - batch[keys.ENERGY]).pow(2).mean()
        loss = loss + (out[keys.PREDICTED_FORCES] - batch[keys.FORCES]).pow(2).mean()
        loss.backward()
        opt.step()

    def predict_step(batch):
        out = model(batch, compute_forces=True)
        return out[keys.PREDICTED_ENERGY].detach().cpu(), out[keys.PREDICTED_FORCES].detach().cpu()

    train = timed(train_step, batches, repeats)
    model.eval()
    return train, timed(predict_step, batches, repeats)


def end_to_end(workdir: Path, shards: Path, data, steps: int,
               accelerator: str = "auto") -> dict[str, str]:
    """pretrain() then finetune() with accelerator auto, then Predictor: wall times, status."""
    from molpre import Predictor
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig
    from molpre.train.pretrain import pretrain

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    start = time.perf_counter()
    # the corpus has no cheap-level labels (no tblite needed here): label-free objectives
    label_free = {"cheap_energy": {"weight": 0.0}, "cheap_forces": {"weight": 0.0},
                  "mask": {"weight": 1.0}, "contrast": {"weight": 1.0}, "denoise": {"weight": 1.0}}
    pre = pretrain({"output": str(workdir / "pre"), "corpus": {"shards": str(shards)},
                    "objectives": label_free,
                    "train": {"max_steps": steps, "epochs": 1000, "batch_size": 8,
                              "accelerator": accelerator, "progress": False},
                    "monitor": {"molecules": 16}})
    mid = time.perf_counter()
    ft = finetune(FinetuneConfig(mode="full", encoder=str(pre.encoder_path), epochs=3,
                                 batch_size=16, forces_weight=1.0, accelerator=accelerator,
                                 out=str(workdir / "ft"), progress=False, log_model=False),
                  data=data)
    end = time.perf_counter()
    rows = Predictor.load(workdir / "ft").predict(["CCO", "c1ccccc1O", "not_a_smiles"])
    return {"pretrain() wall s": f"{mid - start:.1f} ({pre.global_step} steps)",
            "finetune() wall s": f"{end - mid:.1f} (3 epochs, test MAE "
                                 f"{ft.metrics['test_mae_mev']:.0f} meV EMT)",
            "Predictor statuses": ", ".join(rows["status"].astype(str))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop")
    parser.add_argument("--batch-size", type=int, default=16, help="molecules per batch")
    parser.add_argument("--conformers", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if CUDA is here")
    parser.add_argument("--mace-python", default=None)
    parser.add_argument("--nequip-python", default=None)
    args = parser.parse_args()
    device, name = device_name(args.cpu)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        shards, data = build_data(workdir, args.conformers)
        prep = time.perf_counter() - start
        rows = {"device": name, "torch": torch.__version__,
                "data": f"{len(data)} conformers of {len(set(data.mol_ids))} molecules "
                        f"(built in {prep:.1f} s)"}
        rows["pretrain step, conformers/s"] = (
            f"{pretrain_rate(shards, device, args.batch_size, args.steps):.1f} "
            f"(3 objectives, 2 views, {args.batch_size} mol/batch)")
        train, predict = finetune_rates(data, device, args.batch_size, args.steps)
        rows["finetune step, conformers/s"] = f"{train:.1f} (energy + forces)"
        rows["predict, conformers/s"] = f"{predict:.1f} (energy + forces)"
        rows.update(end_to_end(workdir, shards, data, args.steps,
                               "cpu" if device.type == "cpu" else "auto"))
        if device.type == "cuda":
            rows["peak GPU memory"] = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    print("\n| gpu_smoke (small preset) | |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value} |")
    if args.mace_python or args.nequip_python:
        peers(args, device)


def peers(args, device: torch.device) -> None:
    """bench/train_throughput.py on this device (its own table), 1 thread, 1 round."""
    import subprocess
    import sys

    cmd = [sys.executable, str(Path(__file__).with_name("train_throughput.py")),
           "--device", device.type, "--threads", "1", "--rounds", "1", "--n", "128"]
    for flag, value in (("--mace-python", args.mace_python), ("--nequip-python", args.nequip_python)):
        if value:
            cmd += [flag, value]
    print(flush=True)
    subprocess.run(cmd, check=False)


if __name__ == "__main__":
    main()
