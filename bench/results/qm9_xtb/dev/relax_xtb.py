"""Relax every frame of IN.extxyz with GFN2-xTB (tblite, BFGS to fmax 0.02 eV/A, at most 300
steps, one thread), keeping its info (labels such as u0_atom stay the data's):

    python bench/results/qm9_xtb/dev/relax_xtb.py IN.extxyz OUT.extxyz [PART NPARTS]

PART/NPARTS relax every NPARTS-th frame from PART (to run parts on several cores; join the
parts with ``cat`` in any order: studies key molecules by mol_id). Adds ``xtb_relax_steps``
and ``xtb_relax_converged`` to each frame's info and prints steps and seconds a molecule.
"""

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase.io  # noqa: E402
from ase.optimize import BFGS  # noqa: E402
from tblite.ase import TBLite  # noqa: E402


def main(src: str, dst: str, part: str = "0", parts: str = "1") -> None:
    frames = ase.io.read(src, index=":")[int(part)::int(parts)]
    out, start, steps = [], time.time(), 0
    for atoms in frames:
        moved = atoms.copy()
        moved.calc = TBLite(method="GFN2-xTB", verbosity=0)
        opt = BFGS(moved, logfile=None)
        converged = opt.run(fmax=0.02, steps=300)
        steps += opt.nsteps
        moved.calc = None
        moved.info.update(xtb_relax_steps=int(opt.nsteps), xtb_relax_converged=bool(converged))
        out.append(moved)
    ase.io.write(dst, out, format="extxyz")
    print(f"{len(out)} frames relaxed: {steps / max(len(out), 1):.1f} BFGS steps, "
          f"{(time.time() - start) / max(len(out), 1):.3f} s a molecule -> {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
