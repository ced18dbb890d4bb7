"""Write the protocol's 1,000 test molecules (QM9 geometries, mol_id, charge 0, singlet) to
qm9_test1000.extxyz for `molpre label` at the cheap level (no label is copied).

Usage: python make_test_set.py [QM9_SAMPLE.extxyz.gz]   (default ../shared/data/...)
"""
import gzip
import sys

import ase.io
import numpy as np
from ase import Atoms

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/qm9_sample3000.extxyz.gz"
frames = ase.io.read(gzip.open(path, "rt"), index=":", format="extxyz")
perm = np.random.default_rng(0).permutation(len(frames))
out = []
for i in perm[:1000]:
    atoms = Atoms(frames[i].numbers, frames[i].positions)
    atoms.info.update(mol_id=str(frames[i].info["mol_id"]), charge=0, spin=1)
    out.append(atoms)
ase.io.write("qm9_test1000.extxyz", out, format="extxyz")
print(len(out), "test molecules -> qm9_test1000.extxyz")
