"""Paired table of two study parents that differ in one setting (here committee_folds):
each arm's MAE per seed in both, the per-seed difference, its mean and 95% t interval.

    python bench/results/qm9_xtb/dev/folds_table.py /work/runs/dev/delta_folds_false /work/runs/dev/delta_folds_true
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy import stats

CHILD = re.compile(r"^(?P<arm>.+)-N(?P<n>\d+)-s(?P<seed>\d+)$")


def maes(parent: Path) -> dict[tuple[str, int, int], float]:
    """``{(arm, N, seed): test MAE kcal/mol}`` of every finished neural child of ``parent``."""
    out = {}
    for metrics in sorted((parent / "children").glob("*/metrics.json")):
        match = CHILD.match(metrics.parent.name)
        if match:
            key = (match["arm"], int(match["n"]), int(match["seed"]))
            out[key] = float(json.loads(metrics.read_text())["test_mae_kcal"])
    return out


def interval(diffs: np.ndarray) -> str:
    mean = diffs.mean()
    if len(diffs) < 2:
        return f"{mean:+.3f}"
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def main(before: Path, after: Path) -> None:
    a, b = maes(before), maes(after)
    print(f"| arm | N | {before.name} per seed | {after.name} per seed | difference per seed | mean [95%] |")
    print("|---|---|---|---|---|---|")
    for arm, n in sorted({(arm, n) for arm, n, _ in a}):
        seeds = sorted(s for (x, m, s) in a if (x, m) == (arm, n) and (x, m, s) in b)
        if not seeds:
            continue
        x = np.array([a[(arm, n, s)] for s in seeds])
        y = np.array([b[(arm, n, s)] for s in seeds])
        print(f"| {arm} | {n} | {' / '.join(f'{v:.4f}' for v in x)} (mean {x.mean():.3f}) | "
              f"{' / '.join(f'{v:.4f}' for v in y)} (mean {y.mean():.3f}) | "
              f"{' / '.join(f'{v:+.4f}' for v in y - x)} | {interval(y - x)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
