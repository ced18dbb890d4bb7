"""Where a study's gains land: test MAE on the test molecules whose Murcko scaffold is in a
corpus, and on the others, per arm and budget (mean over seeds, kcal/mol):

    python bench/results/qm9_xtb/pool/scaffold_split.py STUDY_OUT CORPUS ARM...

STUDY_OUT is the study's folder (summary.json, test_ids.txt); CORPUS the shard directory the
audit reads (molecules.csv). Scaffold overlap is the audit's ``scaffold`` level
(molpre.study.contamination), on the test molecules in the order of every child's errors.
Test molecules with an element other than H, C, N, O are left out of every row: a child
whose labels never show fluorine skips them in its reported MAE (``test_n_unsupported``),
while its errors file keeps them, so the "all" column can differ from the study's table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from molpre.study import children as ch
from molpre.study import contamination as cont
from molpre.study.plan import read_test_rows
from molpre.units import EV_TO_KCAL_PER_MOL


def main(out: Path, corpus: str, arms: list[str]) -> None:
    summary = json.loads((out / "summary.json").read_text())
    data = ch.load_data(summary["data"], summary["target"], summary["unit"])
    rows = read_test_rows(out / "test_ids.txt", data).tolist()
    test = cont.eval_keys([data.atoms[r] for r in rows])
    shared = cont.audit(cont.corpus_keys(corpus), test, corpus, summary["data"]).overlap["scaffold"]
    kept = np.array([set(map(int, data.atoms[r].numbers)) <= {1, 6, 7, 8} for r in rows])
    print(f"{int(shared.sum())} of {len(shared)} test molecules share a scaffold with {corpus}; "
          f"{int((~kept).sum())} with other elements than H, C, N, O left out")
    shared, other = shared & kept, ~shared & kept
    print("| arm | N | seeds | shared scaffold | other | all (H, C, N, O) |\n|---|---|---|---|---|---|")
    for arm in arms:
        by_budget: dict[int, list[np.ndarray]] = {}
        for child in summary["children"]:
            if child["arm"] == arm and not child["failed"]:
                errors = np.abs(np.load(child["errors_file"])) * EV_TO_KCAL_PER_MOL
                by_budget.setdefault(child["budget"], []).append(errors)
        for budget, runs in sorted(by_budget.items()):
            e = np.stack(runs)
            print(f"| {arm} | {budget} | {len(runs)} | {e[:, shared].mean():.2f} | "
                  f"{e[:, other].mean():.2f} | {e[:, kept].mean():.2f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
