"""Tables of refit_children.py's CSV: per arm and budget, the test MAE before and after the
refit (mean [95% interval] over seeds, molpre.study.stats), the paired change, and each
refitted arm against refitted scratch and against its refitted control (paired by seed).

    python analyse.py test.csv [--control-of pool60x_lr1e-3=pool60_lr1e-3]
"""

from __future__ import annotations

import argparse
import re

import pandas as pd

from molpre.study.stats import bootstrap_ci, paired_difference

NAME = re.compile(r"^(?P<arm>.+)-N(?P<budget>\d+)-s(?P<seed>\d+)$")


def fmt(interval) -> str:
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def diff(a: dict, b: dict) -> str:
    d = paired_difference(a, b)
    return "-" if d is None else f"{d.interval.mean:+.3f} [{d.interval.low:+.3f}, {d.interval.high:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--control-of", action="append", default=[],
                        help="ARM=OTHER: ARM's control is OTHER's (same initial weights)")
    args = parser.parse_args()
    control_of = dict(item.split("=", 1) for item in args.control_of)
    df = pd.read_csv(args.csv)
    parts = df.child.str.extract(NAME)
    df = df.assign(arm=parts.arm.str.replace("-full", "", regex=False),
                   budget=parts.budget.astype(int), seed=parts.seed.astype(int))
    by = {(r.arm, r.budget): {} for r in df.itertuples()}
    before = {(r.arm, r.budget): {} for r in df.itertuples()}
    for r in df.itertuples():
        by[(r.arm, r.budget)][r.seed] = r.test_mae_refit_kcal
        before[(r.arm, r.budget)][r.seed] = r.test_mae_kcal
    print("| N | arm | seeds | before | refit | refit - before | vs scratch (refit) | vs control (refit) |")
    print("|---|---|---|---|---|---|---|---|")
    for (arm, budget) in sorted(by, key=lambda k: (k[1], k[0])):
        a, b = by[(arm, budget)], before[(arm, budget)]
        scratch = by.get(("scratch", budget), {})
        base = control_of.get(arm, arm)
        control = by.get((f"{base}-control", budget), {}) if "control" not in arm and arm != "scratch" else {}
        print(f"| {budget} | {arm} | {len(a)} | {fmt(bootstrap_ci(list(b.values())))} | "
              f"**{fmt(bootstrap_ci(list(a.values())))}** | {diff(a, b)} | "
              f"{diff(a, scratch) if arm != 'scratch' else '-'} | {diff(a, control) if control else '-'} |")


if __name__ == "__main__":
    main()
