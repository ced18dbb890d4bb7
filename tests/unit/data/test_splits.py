import numpy as np
import pytest

from molpre.data.splits import (
    SplitError,
    make_split,
    permutation_test_rows,
    read_ids,
    rows_matching,
)


def _groups(n_mols=40, conformers=3):
    return [f"mol{m}" for m in range(n_mols) for _ in range(conformers)]


def _assert_disjoint_by_group(split, groups):
    parts = [{groups[i] for i in split.train}, {groups[i] for i in split.val},
             {groups[i] for i in split.test}]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]


def test_conformers_never_straddle_and_split_is_seeded():
    groups = _groups()
    split = make_split(groups, seed=3, test_fraction=0.25)
    _assert_disjoint_by_group(split, groups)
    assert sum(split.sizes().values()) == len(groups)
    assert len({groups[i] for i in split.test}) == 10
    again = make_split(groups, seed=3, test_fraction=0.25)
    assert np.array_equal(split.train, again.train) and np.array_equal(split.test, again.test)
    other = make_split(groups, seed=4, test_fraction=0.25)
    assert np.array_equal(split.test, other.test)  # the test set depends on split_seed only
    assert not np.array_equal(split.val, other.val)


def test_budget_counts_labels_and_validation_comes_from_it():
    groups = _groups(conformers=1)
    split = make_split(groups, seed=0, test_fraction=0.2, budget=20, val_fraction=0.1)
    assert len(split.train) + len(split.val) == 20
    assert len(split.val) == 2
    with pytest.raises(SplitError, match="budget"):
        make_split(groups, test_fraction=0.2, budget=33)


def test_validation_never_holds_an_element_training_lacks():
    """A molecule whose element only it has trains; the rest of the carve is unchanged."""
    groups = _groups(n_mols=30, conformers=1)
    elements = [("C", "H")] * len(groups)
    plain = make_split(groups, seed=1, test_fraction=0.2, budget=20, val_fraction=0.2)
    assert np.array_equal(plain.val, make_split(groups, seed=1, test_fraction=0.2, budget=20,
                                                val_fraction=0.2, elements=elements).val)
    lone = int(plain.val[0])  # give the first validation molecule an element of its own
    elements[lone] = ("C", "H", "F")
    split = make_split(groups, seed=1, test_fraction=0.2, budget=20, val_fraction=0.2,
                       elements=elements)
    assert lone in split.train and lone not in split.val
    assert len(split.val) == len(plain.val) and len(split.train) == len(plain.train)
    assert set(split.val) - set(plain.val) and set(split.train) | set(split.val) == \
        set(plain.train) | set(plain.val)
    train_kinds = {e for r in split.train for e in elements[r]}
    assert all(set(elements[r]) <= train_kinds for r in split.val)


def test_carve_keeps_one_validation_molecule_when_every_element_is_unique():
    groups = ["a", "b"]
    split = make_split(groups, test_rows=[], seed=0, budget=2, elements=[("F",), ("N",)])
    assert len(split.val) == 1 and len(split.train) == 1


def test_explicit_test_rows_pull_in_whole_molecules():
    groups = _groups(n_mols=5, conformers=2)
    split = make_split(groups, test_rows=[0], seed=0)
    assert split.test.tolist() == [0, 1]
    _assert_disjoint_by_group(split, groups)


def test_permutation_protocol_and_id_files(tmp_path):
    rows = permutation_test_rows(3000, 1000)
    assert np.array_equal(rows, np.sort(np.random.default_rng(0).permutation(3000)[:1000]))
    path = tmp_path / "ids.txt"
    path.write_text("# test molecules\nm1\n\nm3, extra\n")
    ids = read_ids(path)
    assert ids == ["m1", "m3"]
    assert rows_matching(ids, ["m0", "m1", "m2", "m3"], ["a", "b", "c", "d"]) == [1, 3]
    with pytest.raises(SplitError, match="matches"):
        rows_matching(["zz"], ["m0"], ["a"])
    with pytest.raises(SplitError, match="not found"):
        read_ids(tmp_path / "nope.txt")


def test_a_written_split_file_reads_back_as_the_same_split(tmp_path):
    from molpre.data.splits import read_split, write_split

    groups = _groups(20, 2)
    mol_ids = [f"{g}_c{k % 2}" for k, g in enumerate(groups)]
    split = make_split(groups, seed=1, test_fraction=0.3, budget=8)
    path = write_split(tmp_path / "split.csv", split, mol_ids, groups)
    again = read_split(path, mol_ids, groups)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(again, part), getattr(split, part))
    assert sum(again.sizes().values()) < len(groups)  # the unused pool stays out


@pytest.mark.parametrize("rows,message", [
    ("mol_id,part\nmol0,train\nmol1,val\nmol2,holdout\n", "part must be train, val or test"),
    ("mol_id,part\nmol0,train\nmol1,val\nmolX,test\n", "not in the data"),
    ("mol_id,part\nmol0,train\nmol0,test\nmol1,val\n", "in two parts"),
    ("mol_id,part\nmol0,train\nmol1,train\nmol2,test\n", "no val rows"),
    ("mol_id\nmol0\n", "needs columns mol_id and part"),
])
def test_a_bad_split_file_says_what_is_wrong(tmp_path, rows, message):
    from molpre.data.splits import read_split

    groups = _groups(5, 1)
    path = tmp_path / "split.csv"
    path.write_text(rows)
    with pytest.raises(SplitError, match=message):
        read_split(path, groups, groups)
