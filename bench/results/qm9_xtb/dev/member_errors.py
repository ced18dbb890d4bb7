"""How alike a committee's members are: each member's MAE on a study parent's held-out
molecules and the mean correlation of the members' errors, per finished committee child.

Reproduces each child's own committee MAE from its checkpoint first (a check that the
molecules, the delta baseline and the members are the ones the study scored).

    python bench/results/qm9_xtb/dev/member_errors.py DATA PARENT [PARENT ...]
e.g. python bench/results/qm9_xtb/dev/member_errors.py /work/runs/dev/pool2000.extxyz \
         /work/runs/dev/delta_folds_false /work/runs/dev/delta_folds_true
"""

import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from molpre.data.datasets import load_labeled
from molpre.data.graph import atoms_to_sample
from molpre.delta import Delta, cheap_labels
from molpre.inference.batch import predict_targets
from molpre.models.checkpoint import load_checkpoint
from molpre.units import KCAL_PER_MOL_TO_EV


def held_out(data, parent: Path) -> list[int]:
    ids = set((parent / "test_ids.txt").read_text().split())
    return [i for i, mol in enumerate(data.mol_ids) if mol in ids]


def child_row(child: Path, data, rows: list[int], cheap) -> dict:
    model, payload = load_checkpoint(child / "model.ckpt")
    delta = Delta.from_meta(payload["meta"]["delta"])
    subset, cheap_rows = data.subset(rows), cheap.subset(rows)
    target = subset.energy - delta.baselines(subset, cheap_rows)  # [n] eV, the delta label
    cutoff = float(payload["meta"]["cutoff"])
    samples = [atoms_to_sample(a, cutoff) for a in subset.atoms]
    members = getattr(model, "members", [model])
    errors = np.stack([target - predict_targets(m, samples)["energy"] for m in members])  # [K, n]
    committee = np.abs(errors.mean(axis=0)).mean() / KCAL_PER_MOL_TO_EV
    reported = json.loads((child / "metrics.json").read_text())["test_mae_kcal"]
    pairs = [np.corrcoef(errors[j], errors[k])[0, 1] for j, k in combinations(range(len(members)), 2)]
    return {"child": child.name, "committee": committee, "reported": reported,
            "members": np.abs(errors).mean(axis=1) / KCAL_PER_MOL_TO_EV,
            "correlation": float(np.mean(pairs)) if pairs else np.nan}


def main(data_path: str, parents: list[str]) -> None:
    data = load_labeled(data_path, "u0_atom", "kcal/mol")
    print("| parent | child | committee (reported) | members | mean error correlation |")
    print("|---|---|---|---|---|")
    for parent in map(Path, parents):
        rows = held_out(data, parent)
        cheap = cheap_labels(data, "gfn2-xtb", cache=str(parent / "cheap-gfn2-xtb.db"))
        for child in sorted((parent / "children").glob("*/model.ckpt")):
            row = child_row(child.parent, data, rows, cheap)
            if abs(row["committee"] - row["reported"]) > 1e-4:
                raise SystemExit(f"{child.parent}: {row['committee']:.6f} is not the study's "
                                 f"{row['reported']:.6f}")
            print(f"| {parent.name} | {row['child']} | {row['committee']:.4f} ({row['reported']:.4f}) | "
                  f"{' / '.join(f'{m:.3f}' for m in row['members'])} | {row['correlation']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
