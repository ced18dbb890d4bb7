"""How far a delta teacher's label moves with the geometry it is given (the question behind
teach.extra: molecules beyond the pool have no B3LYP geometry).

For the first 300 dev-test molecules (pool2000.py; dev split permutation seed 1, test ids
from a dev study's OUT/test_ids.txt), the dev delta committee of seed 0 at N = 1000
(./study_dev_delta_loss.yaml, mse) labels four geometries of each, against its true label
(u0_atom at the B3LYP minimum):

- ``b3lyp``: the data's own geometry;
- ``b3lypxtb``: that geometry relaxed with GFN2-xTB (tblite, BFGS to fmax 0.02 eV/A; the
  same conformer);
- ``mmff``: one ETKDG/MMFF conformer from the SMILES (`molpre conformers`, as the extra
  molecules were made);
- ``xtbopt``: that conformer relaxed with GFN2-xTB.

    python bench/results/qm9_xtb/dev/teacher_geometry.py POOL.extxyz DEV_TEST_IDS TEACHER_DIR WORKDIR

Prints the teacher's MAE, mean signed error and its spread (kcal/mol) per geometry.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase.io  # noqa: E402
import numpy as np  # noqa: E402

from molpre.data.datasets import load_labeled  # noqa: E402
from molpre.delta import cheap_labels  # noqa: E402
from molpre.study.contamination import eval_keys  # noqa: E402
from molpre.study.teach_extra import _named, extra_data  # noqa: E402
from molpre.study.teaching import teacher_labels  # noqa: E402
from molpre.units import KCAL_PER_MOL_TO_EV  # noqa: E402


def relaxed(frames: list, fmax: float = 0.02) -> list:
    """Each frame relaxed with GFN2-xTB (one thread); prints steps and seconds a molecule."""
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    out, start, steps = [], time.time(), 0
    for atoms in frames:
        moved = atoms.copy()
        moved.calc = TBLite(method="GFN2-xTB", verbosity=0)
        opt = BFGS(moved, logfile=None)
        opt.run(fmax=fmax, steps=300)
        steps += opt.nsteps
        moved.calc = None
        out.append(moved)
    print(f"relaxed {len(out)}: {steps / len(out):.1f} BFGS steps, "
          f"{(time.time() - start) / len(out):.3f} s a molecule")
    return out


def main(pool: str, test_ids: str, teacher: str, work: str) -> None:
    work_dir = Path(work)
    work_dir.mkdir(parents=True, exist_ok=True)
    ids = set(open(test_ids).read().split())
    test = [a for a in ase.io.read(pool, index=":") if a.info["mol_id"] in ids][:300]
    csv = work_dir / "devtest.csv"
    csv.write_text("id,smiles\n" + "".join(f"{a.info['mol_id']},{k.smiles}\n"
                                          for a, k in zip(test, eval_keys(test), strict=True) if k.smiles))
    subprocess.run(["molpre", "conformers", str(csv), "-o", str(work_dir / "mmff.extxyz"), "--n", "1",
                    "--workers", "2", "--elements", "H,C,N,O,F", "--max-heavy-atoms", "9",
                    "--max-atoms", "40", "--seed", "0"], check=True)
    mmff = ase.io.read(work_dir / "mmff.extxyz", index=":")
    geometries = {"b3lyp": test, "b3lypxtb": relaxed(test), "mmff": mmff, "xtbopt": relaxed(mmff)}
    data = load_labeled(pool, "u0_atom", "kcal/mol")
    truth = dict(zip(data.mol_ids, data.energy, strict=True))
    for name, frames in geometries.items():
        path = work_dir / f"{name}.extxyz"
        ase.io.write(path, _named(frames), format="extxyz")
        extra = extra_data(path, data)
        store = str(work_dir / f"xtb_{name}.db")
        cheap_labels(extra, "gfn2-xtb", cache=store)
        labels = teacher_labels(Path(teacher), extra, np.arange(len(extra)), "energy", [store])
        err = np.array([(v - truth[str(a.info["mol_id"])]) / KCAL_PER_MOL_TO_EV
                        for v, a in zip(labels, frames, strict=True)])
        print(f"{name:9s} n={len(err)}  MAE {np.abs(err).mean():.3f}  mean {err.mean():+.3f}  "
              f"sd {err.std():.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
