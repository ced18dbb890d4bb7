"""Copy an extxyz of optimized geometries with zero forces added as the array ``forces_eq``:
the QM9 geometries are minima of the level their energies were computed at (B3LYP), so its
forces there vanish (to the optimizer's tolerance) and a model may fit them for free.

    python bench/results/qm9_xtb/dev/eq_forces.py IN.extxyz[.gz] OUT.extxyz
"""

import sys

import ase.io
import numpy as np

if __name__ == "__main__":
    frames = ase.io.read(sys.argv[1], index=":", format="extxyz")
    for frame in frames:
        frame.arrays["forces_eq"] = np.zeros((len(frame), 3))
    ase.io.write(sys.argv[2], frames, format="extxyz")
    print(f"{len(frames)} geometries with forces_eq = 0 -> {sys.argv[2]}")
