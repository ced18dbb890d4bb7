"""Write the QM9 sample's training pool (the 2,000 molecules outside the protocol's test set:
the first 1,000 of numpy.random.default_rng(0).permutation(3000)) as extxyz, for studies
that choose settings without reading the test set.

    python bench/results/qm9_xtb/dev/pool2000.py OUT.extxyz
"""

import gzip
import io
import sys
from pathlib import Path

import ase.io
import numpy as np

QM9 = Path(__file__).resolve().parents[5] / "shared" / "data" / "qm9_sample3000.extxyz.gz"

if __name__ == "__main__":
    with gzip.open(QM9, "rt") as handle:
        frames = ase.io.read(io.StringIO(handle.read()), index=":", format="extxyz")
    test = set(np.random.default_rng(0).permutation(len(frames))[:1000].tolist())
    pool = [f for i, f in enumerate(frames) if i not in test]
    ase.io.write(sys.argv[1], pool, format="extxyz")
    print(f"{len(pool)} pool molecules -> {sys.argv[1]}")
