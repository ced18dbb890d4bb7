"""A teacher's NaN answers (a molecule with an element it never saw) are dropped, not learned:
the same rule for the pool's rows and the extra molecules."""

import numpy as np
from ase import Atoms

from molpre.data.datasets import LabeledData
from molpre.study.teach_extra import joined
from molpre.study.teaching import labelled_rows, taught_data


def _data(n: int, tag: str) -> LabeledData:
    atoms = [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74 + 0.01 * i]]) for i in range(n)]
    ids = [f"{tag}{i}" for i in range(n)]
    return LabeledData(atoms, {"energy": -np.arange(n, dtype=float)}, ids, ids, sha256=tag)


def test_labelled_rows_keeps_rows_whose_every_value_is_finite():
    assert labelled_rows(np.array([1.0, np.nan, 3.0])).tolist() == [0, 2]
    vectors = np.array([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0], [0.0, 0.0, 0.0]])
    assert labelled_rows(vectors).tolist() == [0, 2]
    assert labelled_rows(np.empty(0)).tolist() == []


def test_taught_rows_without_a_label_keep_their_own():
    data = _data(4, "p")
    student, taught = taught_data(data, "energy", np.array([1, 2, 3]),
                                  np.array([10.0, np.nan, 30.0]), "teacher")
    assert taught.tolist() == [1, 3]
    assert student.labels["energy"].tolist() == [0.0, 10.0, -2.0, 30.0]
    assert student.sha256 != data.sha256 and "teacher" in student.source


def test_extra_molecules_without_a_label_are_left_out():
    data, extra = _data(2, "p"), _data(3, "x")
    both, rows = joined(data, extra, "energy", np.array([5.0, np.nan, 7.0]))
    assert rows.tolist() == [2, 3]
    assert both.mol_ids == ["p0", "p1", "x0", "x2"]
    assert both.labels["energy"].tolist() == [0.0, -1.0, 5.0, 7.0]
