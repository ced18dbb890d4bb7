"""Can a user optimise geometries with a finetuned model? BFGS on unseen QM9 molecules.

For each model (a finetune output folder or model.ckpt, e.g. a study child's), in float64:
ASE BFGS (fmax 0.05 eV/Angstrom, at most 300 steps) from the published geometry of the
first ``--molecules`` molecules of the QM9 protocol's test split (the first 1,000 of
``numpy.random.default_rng(0).permutation(3000)``: no model has seen them), then the same
InChIKey before and after (RDKit bond perception, molpre.chem), the closest atom pair and the
shortest X-H distance. Prints one table with every model side by side and the load.

    python bench/bfgs_models.py RUN/children/scratch-N100-s0 RUN/children/xtb-full-N100-s0
    python bench/bfgs_models.py level:gfn2-xtb RUN/children/...   # a cheap level as reference

``level:NAME`` (``gfn2-xtb``, ``mmff94``, ``hf/sto-3g``, ...) relaxes with that level itself
(molpre.qc, eV and eV/Angstrom): how far the criterion can be met by a physical potential.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
from pathlib import Path

import numpy as np

QM9 = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_sample3000.extxyz.gz"


def test_molecules(n: int) -> list:
    import ase.io

    with gzip.open(QM9, "rt") as handle:
        frames = ase.io.read(io.StringIO(handle.read()), index=":", format="extxyz")
    order = np.random.default_rng(0).permutation(len(frames))[:1000]
    return [frames[i] for i in order[:n]]


def inchikey(atoms) -> str | None:
    from rdkit import Chem

    from molpre.chem import mol_from_atoms

    try:
        return Chem.MolToInchiKey(mol_from_atoms(atoms))
    except (ValueError, RuntimeError):
        return None


class LevelCalculator:
    """``calculator()`` of a cheap level (molpre.qc.compute per geometry), so a level relaxes
    through the same code as a model."""

    def __init__(self, name: str) -> None:
        from molpre.qc.levels import parse_level

        self.level = parse_level(name)

    def calculator(self):
        from ase.calculators.calculator import Calculator, all_changes

        level = self.level

        class _Level(Calculator):
            implemented_properties = ["energy", "forces"]

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                from molpre.qc.engines import compute_many

                super().calculate(atoms, properties, system_changes)
                result = compute_many([self.atoms.copy()], level, forces=True)[0]
                if not result.ok:
                    raise RuntimeError(f"{level} failed: {result.reason}")
                self.results = {"energy": result.energy, "forces": result.forces}

        return _Level()


def load(source: str):
    """A float64 Predictor for a model folder, or a LevelCalculator for ``level:NAME``."""
    from molpre import Predictor

    if source.startswith("level:"):
        return LevelCalculator(source.split(":", 1)[1])
    return Predictor.load(source, dtype="float64", progress=False)


def relax(predictor, atoms) -> dict:
    """BFGS from ``atoms``; steps, intact (same InChIKey), closest pair and X-H (Angstrom)."""
    from ase import Atoms
    from ase.optimize import BFGS

    start = Atoms(atoms.numbers, atoms.positions)
    moved = start.copy()
    moved.calc = predictor.calculator()
    try:
        optimizer = BFGS(moved, logfile=None)
        converged = optimizer.run(fmax=0.05, steps=300)
        steps = optimizer.get_number_of_steps()
    except Exception as err:  # noqa: BLE001 - a crash is a result of the benchmark
        return {"ok": False, "steps": 0, "intact": False, "reason": type(err).__name__}
    d = moved.get_all_distances()
    np.fill_diagonal(d, np.inf)
    h = moved.numbers == 1
    xh = d[np.ix_(h, ~h)].min() if h.any() and (~h).any() else np.nan
    same = inchikey(start) is not None and inchikey(start) == inchikey(moved)
    return {"ok": bool(converged), "steps": steps, "intact": same, "closest": d.min(),
            "xh": xh}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders, or level:NAME")
    parser.add_argument("--molecules", type=int, default=10)
    args = parser.parse_args()
    molecules = test_molecules(args.molecules)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(molecules)} unseen QM9 test molecules; "
          "BFGS fmax 0.05 eV/A, <= 300 steps, float64")
    print(f"{'model':<48}{'intact':>8}{'converged':>11}{'median steps':>14}"
          f"{'min X-H A':>11}{'min pair A':>12}  changed (test molecule index)")
    for path in args.models:
        predictor = load(path)
        rows = [relax(predictor, atoms) for atoms in molecules]
        intact = sum(r["intact"] for r in rows)
        converged = sum(r["ok"] for r in rows)
        steps = np.median([r["steps"] for r in rows])
        xh = np.nanmin([r.get("xh", np.nan) for r in rows])
        pair = np.nanmin([r.get("closest", np.nan) for r in rows])
        name = str(path)[-48:]
        changed = ",".join(str(i) for i, r in enumerate(rows) if not r["intact"]) or "-"
        print(f"{name:<48}{intact:>5}/{len(rows):<2}{converged:>8}/{len(rows):<2}{steps:>14.0f}"
              f"{xh:>11.2f}{pair:>12.2f}  {changed}")


if __name__ == "__main__":
    main()
