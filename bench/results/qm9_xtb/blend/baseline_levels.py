"""How much of u0_atom a linear fit over per-element counts and cheap levels leaves, held out.

    python bench/results/qm9_xtb/blend/baseline_levels.py POOL.extxyz WORKDIR [N] [LEVEL ...]

For the first N molecules of ``numpy.random.default_rng(7).permutation`` of POOL (the
protocol's 2,000 training-pool molecules, ../dev/pool2000.py; default all), the cheap
levels (default ``gfn2-xtb gfn1-xtb mmff94``; any PySCF ``method/basis`` too) are computed
into content-keyed stores in WORKDIR (molpre.delta.cheap_labels, 2 workers, one thread
each, seconds printed). Then each combination of levels (alone, in pairs, all) is fitted by
least squares beside the element counts on one half and scored on the other (MAE and sd,
kcal/mol). Molecules with fluorine are left out: six in the pool, and a half without one
cannot fit its count.
"""

import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from molpre.data.datasets import load_labeled  # noqa: E402
from molpre.delta import cheap_labels  # noqa: E402
from molpre.units import KCAL_PER_MOL_TO_EV  # noqa: E402

ELEMENTS = (1, 6, 7, 8, 9)


def main(pool: str, work: str, n: int | None, levels: list[str]) -> None:
    data = load_labeled(pool, "u0_atom", "kcal/mol")
    rows = np.random.default_rng(7).permutation(len(data))[:n]
    data = data.subset(rows)
    Path(work).mkdir(parents=True, exist_ok=True)
    energies = {}
    for level in levels:
        start = time.time()
        store = str(Path(work) / f"{level.replace('/', '_')}.db")
        energies[level] = np.asarray(cheap_labels(data, level, cache=store, workers=2).energies)
        print(f"{level}: {len(data)} molecules in {time.time() - start:.0f} s", flush=True)
    counts = np.array([[np.sum(a.numbers == z) for z in ELEMENTS] for a in data.atoms], float)
    y = data.energy / KCAL_PER_MOL_TO_EV
    keep = counts[:, ELEMENTS.index(9)] == 0
    order = np.flatnonzero(keep)[np.random.default_rng(0).permutation(int(keep.sum()))]
    fit, held = order[: len(order) // 2], order[len(order) // 2:]
    combos = [()] + [c for k in range(1, len(levels) + 1) for c in itertools.combinations(levels, k)]
    for combo in combos:
        x = np.column_stack([counts] + [energies[c] / KCAL_PER_MOL_TO_EV for c in combo])
        ok = np.all(np.isfinite(x), axis=1)
        a, b = fit[ok[fit]], held[ok[held]]
        coef, *_ = np.linalg.lstsq(x[a], y[a], rcond=None)
        r = y[b] - x[b] @ coef
        print(f"{' + '.join(combo) or 'counts alone':40s} held-out MAE {np.abs(r).mean():6.2f}  "
              f"sd {r.std():6.2f}  scales {np.round(coef[len(ELEMENTS):], 3)}  (n = {len(b)})")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]) if len(args) > 2 else None,
         args[3:] or ["gfn2-xtb", "gfn1-xtb", "mmff94"])
