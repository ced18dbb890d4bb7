"""Multi-fidelity pretraining: the encoder learns cheap HF/STO-3G energies before the B3LYP labels.

This is the recipe behind bench/results/qm9_sample_study/ (see its README.md):

1. the protocol's training pool (the 2,000 QM9-sample molecules outside the test set, never a
   test molecule) written as extxyz:  python bench/multifidelity_pretrain.py pool OUT.extxyz
2. labeled at HF/STO-3G with molpre's PySCF path (about 1 s a molecule on one core):
   molpre label OUT.extxyz -o pool_hf.db --method hf --basis sto-3g --workers 1
3. the encoder trained on those energies, starting from seed_everything(SEED); small preset
   (saved as init.pt: exactly the weights `molpre study` rebuilds for the control arm):
   python bench/multifidelity_pretrain.py train pool_hf.db OUTDIR --minutes 8 --seed 7
   -> OUTDIR/hf_encoder.pt for a study's `encoders: [{path: ..., seed: 7}]`.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

QM9 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qm9_sample3000.extxyz.gz"


def write_pool(out: Path, test_size: int = 1000) -> int:
    """The non-test molecules of the shared protocol as extxyz (positions, numbers, mol_id)."""
    import ase.io
    from ase import Atoms

    frames = ase.io.read(gzip.open(QM9, "rt"), index=":", format="extxyz")
    perm = np.random.default_rng(0).permutation(len(frames))
    pool = []
    for i in perm[test_size:]:
        atoms = Atoms(frames[i].numbers, frames[i].positions)
        atoms.info.update(mol_id=str(frames[i].info["mol_id"]), charge=0, spin=1)
        pool.append(atoms)
    ase.io.write(out, pool, format="extxyz")
    return len(pool)


def train(labels: Path, out: Path, minutes: float, seed: int, *, forces: bool = False,
          threads: int = 1, name: str = "hf") -> dict:
    """Finetune (mode full) from the seeded initial encoder on ``labels`` (energies, and forces
    with ``forces``); save OUTDIR/{name}_encoder.pt and OUTDIR/{name}_pretrain.json."""
    from molpre.models.checkpoint import load_checkpoint, save_encoder
    from molpre.models.presets import build_encoder
    from molpre.runtime import seed_everything
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    save_encoder(build_encoder("small"), out / "init.pt",
                 meta={"selected_by": "init", "pretrain_seed": seed})
    config = FinetuneConfig(
        data=str(labels), target="energy", forces=forces, test_fraction=0.05,
        val_fraction=0.05, mode="full", encoder=str(out / "init.pt"), epochs=1000,
        batch_size=16, lr=5e-3, patience=60, seed=seed, max_minutes=minutes, threads=threads,
        out=str(out / "ft"), experiment=f"molpre-pretrain-{name}", run_name=f"{name}-pretrain",
        log_model=False, progress=False, accelerator="cpu")
    result = finetune(config)
    model, _ = load_checkpoint(result.checkpoint)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    save_encoder(model.encoder, out / f"{name}_encoder.pt",
                 meta={"selected_by": f"{name}_finetune", "pretrain_seed": seed,
                       "run_id": result.run_id, "data": str(labels), "metrics": metrics})
    record = {"run_id": result.run_id, "metrics": metrics}
    (out / f"{name}_pretrain.json").write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    pool = sub.add_parser("pool", help="write the protocol's training pool as extxyz")
    pool.add_argument("out", type=Path)
    fit = sub.add_parser("train", help="train the encoder on HF/STO-3G energies")
    fit.add_argument("labels", type=Path)
    fit.add_argument("out", type=Path)
    fit.add_argument("--minutes", type=float, default=8.0)
    fit.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.step == "pool":
        print(f"{write_pool(args.out)} molecules -> {args.out}")
    else:
        metrics = train(args.labels, args.out, args.minutes, args.seed)["metrics"]
        print({k: round(v, 3) for k, v in metrics.items() if "mae" in k})


if __name__ == "__main__":
    main()
