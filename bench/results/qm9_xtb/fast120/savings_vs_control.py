"""Label savings of an arm against its random-init control's curve (the study reports them
against scratch): molpre.study.stats.label_savings on the children of a study's summary.json.

    python bench/results/qm9_xtb/fast120/savings_vs_control.py SUMMARY.json ARM CONTROL_ARM
"""

import json
import sys

from molpre.study.report import curves
from molpre.study.stats import label_savings


def main() -> None:
    summary, arm, control = sys.argv[1:4]
    with open(summary) as handle:
        by_arm = curves(json.load(handle)["children"])
    for budget in sorted(by_arm[arm]):
        s = label_savings(by_arm[control], by_arm[arm], budget)
        print(f"{arm} vs {control}, N = {budget}: {s['ratio']:.2f}x "
              f"[{s['ratio_low']:.2f}x, {s['ratio_high']:.2f}x]")


if __name__ == "__main__":
    main()
