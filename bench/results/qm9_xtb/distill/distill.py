"""A plain model taught by a delta model: does the pool's unlabeled half carry the delta
model's accuracy into a model that needs nothing cheap at prediction time?

For one arm, budget and seed of the QM9 protocol:
1. the teacher is the delta study's child (``u0_atom - s * E(GFN2-xTB)``, the same N labels:
   same budget, seed and split as the plain child);
2. it labels the pool molecules the child did not get labels for (the other 2,000 - N, at
   their given geometries, xTB computed for them here); no test molecule is read by it;
3. the student is the plain study's child of the same arm, budget and seed, every finetune
   setting copied from its MLflow run (encoder, head, lr, patience, 10-minute cap, one
   thread), trained on the N true labels plus the teacher's labels, validated on the child's
   own validation molecules (true labels), and tested on the 1,000 test molecules.

The student is plain: it predicts from the geometry alone. Prints and writes one JSON line.

    python distill.py --plain-parent c6e02d35585d4e83b017161314d7d4dd \
        --teacher /work/runs/qm9/study_pool_delta/children/xtb185mutA_lr1e-3-full-N1000-s0 \
        --arm xtb185mutA_lr1e-3:full --budget 1000 --seed 0 --out /work/runs/distill
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

KCAL_PER_EV = 23.060547830619026


def plain_child_params(parent: str, run_name: str) -> dict:
    """The finetune params the plain study logged for its child ``run_name``."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=["molpre-study"],
        filter_string=f"tags.mlflow.parentRunId = '{parent}' and tags.mlflow.runName = '{run_name}'")
    if len(runs) != 1:
        raise SystemExit(f"{run_name}: {len(runs)} runs under parent {parent}, expected 1")
    row = runs.iloc[0]
    return {c[len("params."):]: row[c] for c in runs.columns
            if c.startswith("params.") and isinstance(row[c], str)}


def finetune_fields(params: dict) -> dict:
    """FinetuneConfig fields from logged params (JSON-decoded; bookkeeping params dropped)."""
    from molpre.train.finetune_config import FinetuneConfig

    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    return {k: _decode(v) for k, v in params.items() if k in names}


def _decode(text: str):
    """A logged param back to its value (numbers, null, booleans, lists; else the string)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def teacher_labels(teacher: Path, atoms: list) -> np.ndarray:
    """The delta teacher's energies (eV) for ``atoms`` (xTB computed here, in order); NaN
    where it cannot label one (an element its N labels never showed: it is left untaught)."""
    from molpre import Predictor

    predictor = Predictor.load(str(teacher / "model.ckpt"), progress=False, workers=1)
    table = predictor.predict([a.copy() for a in atoms])
    return np.where(table["status"] == "ok", table["energy_ev"], np.nan).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain-parent", required=True, help="MLflow id of the plain study")
    parser.add_argument("--teacher", required=True, type=Path, help="the delta child folder")
    parser.add_argument("--arm", required=True, help="the plain study's arm (scratch, X:full, ...)")
    parser.add_argument("--budget", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--experiment", default="molpre-distill")
    args = parser.parse_args()

    import torch

    from molpre.data.datasets import load_labeled
    from molpre.data.graph import atoms_to_sample
    from molpre.data.splits import read_split, write_split
    from molpre.inference import predict_targets
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    torch.set_num_threads(1)
    run_name = f"{args.arm} N{args.budget} s{args.seed}"
    params = plain_child_params(args.plain_parent, run_name)
    fields = finetune_fields(params)
    data = load_labeled(fields["data"], fields["target"], fields["unit"])
    plain_split = read_split(Path(fields["out"]) / "split.csv", data.mol_ids, data.groups)
    split = read_split(args.teacher / "split.csv", data.mol_ids, data.groups)
    for part in ("train", "val", "test"):  # the teacher learned from the student's labels
        assert np.array_equal(getattr(split, part), getattr(plain_split, part)), part
    used = set(np.concatenate([split.train, split.val, split.test]).tolist())
    pool = np.array([r for r in range(len(data)) if r not in used], dtype=np.int64)

    start = time.perf_counter()
    taught = teacher_labels(args.teacher, [data.atoms[int(r)] for r in pool])
    val_taught = teacher_labels(args.teacher, [data.atoms[int(r)] for r in split.val])
    teacher_s = time.perf_counter() - start
    teacher_val_mae = float(np.mean(np.abs(val_taught - data.energy[split.val])) * KCAL_PER_EV)
    untaught = int(np.isnan(taught).sum())
    pool, taught = pool[~np.isnan(taught)], taught[~np.isnan(taught)]

    energy = data.energy.copy()
    energy[pool] = taught
    digest = hashlib.sha256(data.sha256.encode() + taught.tobytes()).hexdigest()
    student_data = dataclasses.replace(data, labels={**data.labels, "energy": energy},
                                       sha256=digest, source=f"{data.source} + teacher {args.teacher.name}")
    out = args.out / run_name.replace(":", "-").replace(" ", "-")
    out.mkdir(parents=True, exist_ok=True)
    taught_split = dataclasses.replace(split, train=np.sort(np.concatenate([split.train, pool])))
    split_file = write_split(out / "student_split.csv", taught_split, data.mol_ids, data.groups)
    fields.update(budget=None, test_ids=None, split_file=str(split_file), out=str(out / "student"),
                  run_name=f"distilled {run_name}", experiment=args.experiment, log_model=False,
                  progress=False)
    start = time.perf_counter()
    result = finetune(FinetuneConfig.from_dict(fields), student_data)
    student_s = time.perf_counter() - start

    test = data.subset(split.test)  # true labels
    cutoff = float(result.model.encoder.config.cutoff)
    pred = predict_targets(result.model, [atoms_to_sample(a, cutoff) for a in test.atoms])["energy"]
    errors = np.abs(pred - test.energy) * KCAL_PER_EV
    np.save(out / "test_errors_kcal.npy", errors)
    record = {"arm": args.arm, "budget": args.budget, "seed": args.seed,
              "teacher": str(args.teacher), "student_test_mae_kcal": float(errors.mean()),
              "teacher_val_mae_kcal": teacher_val_mae, "n_taught": int(len(pool)), "n_untaught": untaught,
              "n_train_true": int(len(split.train)), "n_val": int(len(split.val)),
              "teacher_s": round(teacher_s, 1), "student_s": round(student_s, 1),
              "run_id": result.run_id, "threads": torch.get_num_threads(),
              "omp": os.environ.get("OMP_NUM_THREADS")}
    line = json.dumps(record)
    print(line)
    with open(args.out / "results.jsonl", "a") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
