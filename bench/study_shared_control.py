"""Usage: python bench/study_shared_control.py STUDY/summary.json

Paired differences of every pretrained arm against the shared random-init control
(all encoders were built from seed_everything(7); relative weight difference 0.0)."""
import json
import sys

from molpre.study import stats

s = json.load(open(sys.argv[1]))
by = {}
for r in s["children"]:
    if not r["failed"]:
        by.setdefault((r["arm"], r["budget"]), {})[r["seed"]] = r["test_mae_kcal"]
for arm in ("hfsto3g:full", "ssl_denoise:full", "ssl_all3:full"):
    for b in (100, 300, 1000):
        if (arm, b) not in by:
            continue
        for ref in ("scratch", "hfsto3g:control-full"):
            d = stats.paired_difference(by[(arm, b)], by.get((ref, b), {}))
            if d:
                dd = d.as_dict()
                print(f"{arm:18s} N={b:5d} - {ref:22s} {dd['mean']:+.2f} "
                      f"[{dd['low']:+.2f}, {dd['high']:+.2f}] p={dd['p_value']:.3f} n={dd['n']}")
