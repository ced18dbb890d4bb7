"""Compare the arms of one study with a reference arm of another on the same protocol.

Usage: python bench/study_compare.py DELTA/summary.json PLAIN/summary.json [--ref scratch]
       [--ref-control hfsto3g:control-full]

Both studies must share data, test split, budgets and seeds (then child (N, seed) of either
saw the same labels, so differences are paired). Prints, per arm of the first study and
budget: its mean, the paired difference against the reference arms of the second, and the
labels the second study's reference (scratch) needs, by its power law over its own budgets,
to reach that mean (label savings, with a seed-bootstrap interval). Used for the delta
study: delta arms against plain scratch and the plain random-init control.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from molpre.study import stats
from molpre.study.report import curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--ref", default="scratch")
    parser.add_argument("--ref-control", default="hfsto3g:control-full")
    args = parser.parse_args()
    first, second = (json.load(open(p)) for p in (args.first, args.second))
    for key in ("data", "split", "n_test"):
        if first[key] != second[key]:
            raise SystemExit(f"the studies differ in {key}: {first[key]!r} vs {second[key]!r}")
    a, b = curves(first["children"]), curves(second["children"])
    ref = b[args.ref]
    print(f"| arm ({first['name']}) | N | mean kcal/mol | - {args.ref} ({second['name']}) | "
          f"- {args.ref_control} ({second['name']}) | labels {args.ref} needs (x) |")
    print("|---|---|---|---|---|---|")
    for arm in sorted(a):
        for n in sorted(a[arm]):
            cells = [f"{np.mean(list(a[arm][n].values())):.2f} (n={len(a[arm][n])})"]
            for name in (args.ref, args.ref_control):
                d = stats.paired_difference(a[arm][n], b.get(name, {}).get(n, {}))
                cells.append("-" if d is None else
                             f"{d.interval.mean:+.2f} [{d.interval.low:+.2f}, {d.interval.high:+.2f}]"
                             f" p={d.p_value:.3f}")
            s = stats.label_savings(ref, a[arm], n, n_boot=500)
            cells.append(f"{s['labels']:.0f} [{s['low']:.0f}, {s['high']:.0f}] "
                         f"({s['ratio']:.2f}x)")
            print(f"| {arm} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
