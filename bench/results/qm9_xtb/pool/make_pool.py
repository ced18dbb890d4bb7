"""The QM9 protocol's 2,000 training-pool molecules (never its 1,000 test molecules) as extxyz,
geometries and ids only (no labels), for a cheap-level corpus:

    python bench/results/qm9_xtb/pool/make_pool.py QM9_EXTXYZ_GZ TEST_IDS_TXT OUT.extxyz [--test]

``--test`` writes the 1,000 test molecules instead, for diagnostics only (how well a
pretrained head reproduces the cheap level on them): never mix that file into a corpus.
TEST_IDS_TXT is a study's ``test_ids.txt`` (the first 1,000 of
``numpy.random.default_rng(0).permutation(3000)``); the script checks that it is exactly that
set before writing anything, so no test geometry can reach the corpus.
"""

from __future__ import annotations

import gzip
import sys

import ase.io
import numpy as np
from ase import Atoms


def main(qm9_path: str, test_ids_path: str, out_path: str, which: str = "pool") -> None:
    with gzip.open(qm9_path, "rt") as handle:
        molecules = ase.io.read(handle, index=":", format="extxyz")
    test = set(open(test_ids_path).read().split())
    order = np.random.default_rng(0).permutation(len(molecules))
    protocol_test = {molecules[i].info["mol_id"] for i in order[:1000]}
    if test != protocol_test:
        raise SystemExit(f"{test_ids_path} is not the protocol's test set")
    chosen = order[:1000] if which == "--test" else order[1000:]
    out = [Atoms(numbers=molecules[i].numbers, positions=molecules[i].positions,
                 info={"mol_id": molecules[i].info["mol_id"]}) for i in chosen]
    ase.io.write(out_path, out, format="extxyz")
    if which == "--test":
        print(f"{len(out)} TEST molecules -> {out_path} (diagnostics only: never a corpus)")
        return
    assert not {a.info["mol_id"] for a in out} & test
    print(f"{len(out)} pool molecules -> {out_path} (0 of {len(test)} test ids)")


if __name__ == "__main__":
    main(*sys.argv[1:5])
