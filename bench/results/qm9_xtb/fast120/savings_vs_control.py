"""Label savings of an arm against its random-init control's curve (the study reports them
against scratch): molpre.study.stats.label_savings on the children of a study's summary.json.

    python bench/results/qm9_xtb/fast120/savings_vs_control.py SUMMARY.json ARM CONTROL_ARM
"""

import json
import sys
from collections import defaultdict

from molpre.study.stats import label_savings


def curve(children: list[dict], arm: str) -> dict[int, dict[int, float]]:
    """budget -> seed -> test error of ``arm``'s finished, not failed children."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for child in children:
        if child["arm"] == arm and not child["failed"]:
            out[int(child["budget"])][int(child["seed"])] = float(child["test_mae"])
    return dict(out)


def main() -> None:
    summary, arm, control = sys.argv[1:4]
    children = json.load(open(summary))["children"]
    arm_curve, control_curve = curve(children, arm), curve(children, control)
    for budget in sorted(arm_curve):
        s = label_savings(control_curve, arm_curve, budget)
        print(f"{arm} vs {control}, N = {budget}: {s['ratio']:.2f}x "
              f"[{s['ratio_low']:.2f}x, {s['ratio_high']:.2f}x]")


if __name__ == "__main__":
    main()
