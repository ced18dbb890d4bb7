"""Apply ``refit_atomref`` (molpre.train.refit, the code `molpre finetune --refit-atomref`
runs) to finished delta children of a study, after the fact, and score them again.

The refit reads only each child's training rows (``part == train`` in its split.csv), never
validation or test: every committee member's energy head gets the per-element fit of what
that member leaves on them. Taught children (``+taught``: part of their training labels came
from a teacher, not the data) are skipped; test molecules with an element the child never saw
are left out, as the study leaves them out (``study_test_mae_kcal``: the study's own figure,
which ``test_mae_kcal`` reproduces). Output: one CSV row per child (test MAE before and
after, the mean training error, prediction - label, before), in kcal/mol.

    python refit_children.py DATA.extxyz.gz STUDY_OUT [STUDY_OUT ...] -o refit.csv

STUDY_OUT is a study's ``out`` folder (children/ and cheap-<level>.db inside).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molpre.data.datasets import load_labeled
from molpre.data.graph import atoms_to_sample
from molpre.delta import Delta, cheap_labels
from molpre.inference.batch import predict_targets
from molpre.models.checkpoint import load_checkpoint
from molpre.models.committee import Committee
from molpre.train.refit import refit_heads
from molpre.units import EV_TO_KCAL_PER_MOL


def child_rows(child: Path, index: dict[str, int]) -> dict[str, list[int]]:
    split = pd.read_csv(child / "split.csv")
    return {part: [index[m] for m in split.mol_id[split.part == part]] for part in ("train", "test")}


def score(model, samples, labels) -> np.ndarray:
    with torch.no_grad():
        return predict_targets(model, samples)["energy"] - labels


def refit_child(child: Path, data, cheap, index) -> dict:
    model, payload = load_checkpoint(child / "model.ckpt")
    delta = Delta.from_meta(payload["meta"].get("delta"))
    target = delta.remove(data, cheap) if delta is not None else data
    rows = child_rows(child, index)
    known = set(model.elements)  # as the study scores: test molecules of unseen elements skipped
    rows["test"] = [i for i in rows["test"] if set(map(int, data.atoms[i].numbers)) <= known]
    cutoff = float(model.encoder.config.cutoff)
    train = target.subset(rows["train"])
    samples = {p: [atoms_to_sample(target.atoms[i], cutoff) for i in r] for p, r in rows.items()}
    test_labels = target.labels["energy"][rows["test"]]
    before = score(model, samples["test"], test_labels)
    train_before = score(model, samples["train"], train.labels["energy"])
    members = model.members if isinstance(model, Committee) else [model]
    for member in members:
        refit_heads(member, train, samples["train"])
    after = score(model, samples["test"], test_labels)
    k = EV_TO_KCAL_PER_MOL
    return {"child": child.name, "n_train": len(rows["train"]), "n_test": len(rows["test"]),
            "members": len(members), "train_mean_error_kcal": k * float(train_before.mean()),
            "study_test_mae_kcal": json.loads((child / "metrics.json").read_text())["test_mae_kcal"],
            "test_mae_kcal": k * float(np.abs(before).mean()),
            "test_mae_refit_kcal": k * float(np.abs(after).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("studies", nargs="+")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--match", default="", help="only children whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_labeled(args.data, "u0_atom", "kcal/mol")
    index = {m: i for i, m in enumerate(data.mol_ids)}
    out = []
    for study in map(Path, args.studies):
        dbs = sorted(study.glob("cheap-*.db"))
        cheap = cheap_labels(data, dbs[0].stem.removeprefix("cheap-"), cache=str(dbs[0])) if dbs else None
        for child in sorted((study / "children").iterdir()):
            if (args.match not in child.name or "+taught" in child.name
                    or not (child / "model.ckpt").exists()):
                continue
            row = {"study": study.name, **refit_child(child, data, cheap, index)}
            print(row, flush=True)
            out.append(row)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)


if __name__ == "__main__":
    main()
