"""The extra molecules a dev study may give its teacher: those of EXTRA.extxyz that are a
single-edit neighbour (../mutants/make_mutants.py's edits) of a dev-training molecule, the
dev pool minus the dev test set. The protocol's extra molecules are neighbours of its
training pool, never made from a test molecule; kept the same way here, a dev test
molecule's neighbour stays only when some dev-training molecule also has it, as a protocol
test molecule's neighbour does.

    python bench/results/qm9_xtb/dev/dev_extra.py POOL.extxyz DEV_TEST_IDS.txt EXTRA.extxyz OUT.extxyz
"""

import sys
from pathlib import Path

import ase.io
from rdkit import Chem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mutants"))
from make_mutants import _block, neighbours  # noqa: E402

from molpre.study.contamination import eval_keys  # noqa: E402


def main(pool_path: str, test_ids_path: str, extra_path: str, out_path: str) -> None:
    pool = ase.io.read(pool_path, index=":", format="extxyz")
    test = set(open(test_ids_path).read().split())
    train = [k for a, k in zip(pool, eval_keys(pool), strict=True) if a.info["mol_id"] not in test]
    reachable = {_block(m) for k in train if k.smiles
                 for m in neighbours(Chem.MolFromSmiles(k.smiles))} - {None}
    extra = ase.io.read(extra_path, index=":", format="extxyz")
    kept = [a for a in extra if str(a.info["inchikey"])[:14] in reachable]
    ase.io.write(out_path, kept, format="extxyz")
    print(f"{len(kept)} of {len(extra)} extra molecules are neighbours of the {len(train)} "
          f"dev-training molecules -> {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
