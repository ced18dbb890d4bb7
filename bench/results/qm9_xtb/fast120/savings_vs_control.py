"""An arm against any other arm of the same study (the study reports each arm against scratch
and its control only): at every budget, the paired difference over shared seeds
(molpre.study.stats.paired_difference, arm - reference) and the label savings against the
reference's curve (molpre.study.stats.label_savings), from the children of summary.json.

    python bench/results/qm9_xtb/fast120/savings_vs_control.py SUMMARY.json ARM REFERENCE_ARM
"""

import json
import sys

from molpre.study.report import curves
from molpre.study.stats import label_savings, paired_difference


def main() -> None:
    summary, arm, control = sys.argv[1:4]
    with open(summary) as handle:
        by_arm = curves(json.load(handle)["children"])
    for budget in sorted(by_arm[arm]):
        s = label_savings(by_arm[control], by_arm[arm], budget)
        line = (f"{arm} vs {control}, N = {budget}: {s['ratio']:.2f}x "
                f"[{s['ratio_low']:.2f}x, {s['ratio_high']:.2f}x]")
        d = paired_difference(by_arm[arm][budget], by_arm[control].get(budget, {}))
        if d is not None:
            i = d.interval
            line += (f"; paired difference {i.mean:+.2f} [{i.low:+.2f}, {i.high:+.2f}] "
                     f"over seeds {list(d.seeds)}, p = {d.p_value:.3f}")
        print(line)


if __name__ == "__main__":
    main()
