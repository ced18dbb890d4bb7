"""A delta teacher that learned from xTB-relaxed inputs (./study_dev_delta_relaxed.yaml)
labels the first dev-test molecules at four geometries, against their true labels
(u0_atom at the B3LYP minimum), kcal/mol:

- the data's B3LYP geometry with the xTB energy of its relaxed copy (how it would label the
  pool of a study on the data's own geometries);
- the relaxed geometry (the teacher's own inputs; its study's test molecules);
- ``xtbopt`` and ``mmff`` of teacher_geometry.py's WORKDIR (a new molecule's cases).

    python bench/results/qm9_xtb/dev/relaxed_teacher.py POOL.extxyz RELAXED_POOL.extxyz \
        DEV_TEST_IDS TEACHER_DIR RELAXED_STORE WORKDIR
"""

import sys
from pathlib import Path

import numpy as np

from molpre.data.datasets import load_labeled
from molpre.study.teach_extra import PREFIX, extra_data
from molpre.study.teaching import teacher_labels
from molpre.units import KCAL_PER_MOL_TO_EV


def show(name: str, labels: np.ndarray, ids: list[str], truth: dict) -> None:
    err = np.array([(v - truth[i]) / KCAL_PER_MOL_TO_EV for v, i in zip(labels, ids, strict=True)])
    print(f"{name:32s} n={len(err)}  MAE {np.abs(err).mean():.3f}  mean {err.mean():+.3f}  "
          f"sd {err.std():.3f}")


def main(pool: str, relaxed_pool: str, test_ids: str, teacher: str, store: str, work: str) -> None:
    data = load_labeled(pool, "u0_atom", "kcal/mol")
    truth = dict(zip(data.mol_ids, data.energy, strict=True))
    ids = set(open(test_ids).read().split())
    rows = np.array([i for i, m in enumerate(data.mol_ids) if m in ids])
    mids = [data.mol_ids[r] for r in rows]
    show("b3lyp geometry, relaxed xTB", teacher_labels(Path(teacher), data, rows, "energy", [store]), mids, truth)
    relaxed = load_labeled(relaxed_pool, "u0_atom", "kcal/mol")
    show("relaxed geometry", teacher_labels(Path(teacher), relaxed, rows, "energy", [store]), mids, truth)
    for name in ("xtbopt", "mmff"):
        extra = extra_data(Path(work) / f"{name}.extxyz", data)
        labels = teacher_labels(Path(teacher), extra, np.arange(len(extra)), "energy",
                                [str(Path(work) / f"xtb_{name}.db")])
        show(name, labels, [m.removeprefix(PREFIX) for m in extra.mol_ids], truth)


if __name__ == "__main__":
    main(*sys.argv[1:7])
