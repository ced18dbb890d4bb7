"""The students of distill.py beside the plain study's arms: means with the study's intervals
(molpre.study.stats), paired differences over seeds, and label savings against the plain
scratch curve.

    python analyse.py RESULTS.jsonl PLAIN_SUMMARY.json
"""

from __future__ import annotations

import json
import sys

from molpre.study.report import curves
from molpre.study.stats import bootstrap_ci, label_savings, paired_difference

PRETRAINED, CONTROL = "xtb185mutA_lr1e-3:full", "xtb120r_lr1e-3:control-full"


def students(path: str) -> dict[str, dict[int, dict[int, float]]]:
    """``{'distilled ARM': {budget: {seed: test MAE kcal/mol}}}`` (the last line of a seed wins)."""
    out: dict = {}
    with open(path) as handle:
        for line in handle:
            r = json.loads(line)
            out.setdefault(f"distilled {r['arm']}", {}).setdefault(r["budget"], {})[r["seed"]] = \
                r["student_test_mae_kcal"]
    return out


def cell(by_seed: dict[int, float]) -> str:
    i = bootstrap_ci(list(by_seed.values()))
    return f"{i.mean:.2f} [{i.low:.2f}, {i.high:.2f}] (n={i.n})"


def diff(arm: dict[int, float], ref: dict[int, float]) -> str:
    d = paired_difference(arm, ref)
    if d is None:
        return "-"
    i = d.interval
    return f"{i.mean:+.2f} [{i.low:+.2f}, {i.high:+.2f}] (seeds {list(d.seeds)})"


def main() -> None:
    taught = students(sys.argv[1])
    with open(sys.argv[2]) as handle:
        plain = curves(json.load(handle)["children"])
    arms = {**plain, **taught}
    budgets = sorted({b for by_b in taught.values() for b in by_b})
    shown = ["scratch", CONTROL, PRETRAINED, "distilled scratch", f"distilled {CONTROL}",
             f"distilled {PRETRAINED}"]
    print("| N | " + " | ".join(shown) + " |")
    print("|---|" + "---|" * len(shown))
    for b in budgets:
        print(f"| {b} | " + " | ".join(cell(arms[a][b]) if b in arms.get(a, {}) else "-"
                                       for a in shown) + " |")
    pairs = [(f"distilled {PRETRAINED}", PRETRAINED), (f"distilled {CONTROL}", CONTROL),
             ("distilled scratch", "scratch"),
             (f"distilled {PRETRAINED}", f"distilled {CONTROL}"),
             (f"distilled {PRETRAINED}", "distilled scratch"),
             (f"distilled {PRETRAINED}", "scratch")]
    print("\n| N | arm - reference | paired difference [95%] |\n|---|---|---|")
    for b in budgets:
        for arm, ref in pairs:
            if b in arms.get(arm, {}) and b in arms.get(ref, {}):
                print(f"| {b} | {arm} - {ref} | {diff(arms[arm][b], arms[ref][b])} |")
    print("\n| N | arm | labels saved vs plain scratch | vs its plain control |\n|---|---|---|---|")
    for b in budgets:
        for arm in (f"distilled {PRETRAINED}", f"distilled {CONTROL}", "distilled scratch"):
            if b not in arms.get(arm, {}):
                continue
            s = label_savings(plain["scratch"], {b: arms[arm][b]}, b)
            c = label_savings(plain[CONTROL], {b: arms[arm][b]}, b)
            print(f"| {b} | {arm} | {s['ratio']:.2f}x [{s['ratio_low']:.2f}x, {s['ratio_high']:.2f}x]"
                  f" | {c['ratio']:.2f}x [{c['ratio_low']:.2f}x, {c['ratio_high']:.2f}x] |")


if __name__ == "__main__":
    main()
