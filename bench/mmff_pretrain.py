"""Label-free physics pretraining: the small encoder trained on MMFF94 energies and forces.

Usage: python bench/mmff_pretrain.py POOL.extxyz OUTDIR [--minutes 20] [--copies 4]
       [--sigma 0.05,0.1] [--seed 7]

One of issue 13's directions: instead of an isotropic denoising target, a real potential
energy surface that RDKit computes for free. For every molecule of POOL (the protocol's
2,000 training-pool geometries; no test molecule), bonds are perceived from the geometry
(molpre.chem.xyz), MMFF94 energies and forces are computed at the given geometry and at
``copies`` Gaussian-displaced copies (``sigma`` Angstrom, cycled), and converted once to eV
and eV/Angstrom. The encoder then starts from ``seed_everything(seed)``'s weights (the
study's random-init control) and is finetuned on those labels (energy + forces, full mode)
for at most ``minutes``; its encoder is saved as OUTDIR/mmff_encoder.pt for a study's
``encoders:`` entry (``seed: 7``, ``control_of`` the encoder with the same start).
Prints the label counts, the MMFF seconds, and the fit's test MAE (energy, forces).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from rdkit.Chem import AllChem

from molpre.units import KCAL_PER_MOL_TO_EV


def mmff_labels(frames, copies: int, sigmas: list[float], seed: int):
    """Frames with MMFF94 energy (eV) and forces (eV/A): each geometry and its copies."""
    from molpre.chem.xyz import mol_from_atoms

    rng = np.random.default_rng(seed)
    out, skipped = [], 0
    for atoms in frames:
        try:
            mol = mol_from_atoms(atoms, int(atoms.info.get("charge", 0)))
        except ValueError:
            skipped += 1
            continue
        props = AllChem.MMFFGetMoleculeProperties(mol)
        if props is None:
            skipped += 1
            continue
        field = AllChem.MMFFGetMoleculeForceField(mol, props)
        for k in range(copies + 1):
            sigma = 0.0 if k == 0 else sigmas[(k - 1) % len(sigmas)]
            pos = atoms.positions + rng.normal(0.0, sigma, atoms.positions.shape)
            flat = pos.ravel().tolist()
            energy = field.CalcEnergy(flat) * KCAL_PER_MOL_TO_EV
            forces = -np.asarray(field.CalcGrad(flat)).reshape(-1, 3) * KCAL_PER_MOL_TO_EV
            copy = atoms.copy()
            copy.positions = pos
            copy.info = {"mol_id": atoms.info["mol_id"], "conf_id": k}
            copy.calc = SinglePointCalculator(copy, energy=energy, forces=forces)
            out.append(copy)
    return out, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool")
    parser.add_argument("outdir")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--sigma", default="0.05,0.1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--labels-only", action="store_true",
                        help="Write OUTDIR/mmff_labels.extxyz and stop (a later run reuses it).")
    args = parser.parse_args()

    from multifidelity_pretrain import train  # the same supervised-pretraining path

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    settings = {"pool": str(Path(args.pool).resolve()), "copies": args.copies,
                "sigma": args.sigma, "seed": args.seed}
    record_path = out / "mmff_labels.json"
    if record_path.is_file() and json.loads(record_path.read_text())["settings"] == settings:
        labels = json.loads(record_path.read_text())
        print(f"MMFF94 labels reused: {out / 'mmff_labels.extxyz'}")
    else:
        frames = ase.io.read(args.pool, index=":")
        labeled, skipped = mmff_labels(frames, args.copies,
                                       [float(s) for s in args.sigma.split(",")], args.seed)
        ase.io.write(out / "mmff_labels.extxyz", labeled, format="extxyz")
        labels = {"settings": settings, "geometries": len(labeled),
                  "molecules": len(frames) - skipped, "skipped": skipped,
                  "seconds": time.perf_counter() - start}
        record_path.write_text(json.dumps(labels, indent=1))
        print(f"MMFF94 labels: {len(labeled)} geometries of {len(frames) - skipped} molecules "
              f"({skipped} skipped) in {labels['seconds']:.1f} s")
    if args.labels_only:
        return

    record = train(out / "mmff_labels.extxyz", out, args.minutes, args.seed, forces=True,
                   threads=args.threads, name="mmff")
    record.update(labels=labels, wall_seconds=time.perf_counter() - start)
    (out / "mmff_pretrain.json").write_text(json.dumps(record, indent=1))
    metrics = record["metrics"]
    print(json.dumps({k: round(v, 3) for k, v in metrics.items() if "mae" in k}))


if __name__ == "__main__":
    main()
