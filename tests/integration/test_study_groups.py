"""A study on real data whose molecules repeat across rows (RDKit's NCI sample does): one
definition of the test set, by InChIKey group, for children, audit and probes; and budgets
beyond the pool refused before any child runs."""

from __future__ import annotations

import json

import ase.io
import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.splits import SplitError, permutation_test_rows
from molpre.models.encoder import save_encoder
from molpre.models.presets import resolve_config
from molpre.study.config import load_study_config
from molpre.study.contamination import keys_from_atoms
from molpre.study.encoders import initial_encoder
from molpre.study.runner import run_study

N_ROWS, TEST_SIZE = 70, 15


def planted(shared_data, tmp_path):
    """70 QM9 frames with their InChIKeys, where a row outside the test split is replaced by
    a second conformer row of a test molecule (same InChIKey, its own mol_id)."""
    frames = ase.io.read(shared_data / "qm9_sample3000.extxyz.gz", index=f":{N_ROWS}",
                         format="extxyz")
    for row, atoms in enumerate(frames):  # some rows lack smiles: keys from the geometry
        atoms.info["inchikey"] = keys_from_atoms(atoms, row).inchikey
    test = set(permutation_test_rows(N_ROWS, TEST_SIZE, 0).tolist())
    source = min(test)
    twin = min(set(range(N_ROWS)) - test)
    copy = frames[source].copy()
    copy.info["mol_id"] = f"dup-of-{frames[source].info['mol_id']}"
    frames[twin] = copy
    path = tmp_path / "planted.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return path, frames, source, twin


def study_raw(tmp_path, data, **changes) -> dict:
    encoder = tmp_path / "enc.pt"
    save_encoder(initial_encoder(resolve_config("small"), 0), encoder)
    corpus = tmp_path / "corpus.smi"
    corpus.write_text("CCO a\nC1CC1 b\nc1ccccc1 c\n")
    raw = {"name": "planted", "data": str(data), "target": "u0_atom", "unit": "kcal/mol",
           "out": str(tmp_path / "out"), "experiment": "planted",
           "split": {"kind": "permutation", "test_size": TEST_SIZE, "seed": 0},
           "budgets": [20], "seeds": {"small": 1, "large": 1, "small_max": 20},
           "encoders": [{"name": "enc", "path": str(encoder), "modes": ["full"], "control": [],
                         "corpus": str(corpus)}],
           "baselines": ["linear"], "probes": {"folds": 2},
           "train": {"epochs": 2, "patience": 2, "max_minutes": 2, "val_min": 4,
                     "batch_size": 8, "fail_margin": -1000.0}}
    raw.update(changes)
    return raw


def test_duplicates_across_the_split_stay_on_the_test_side_everywhere(shared_data, tmp_path):
    data_path, frames, source, twin = planted(shared_data, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_study_config(raw=study_raw(tmp_path, data_path))
    result = run_study(config, uri)  # the old code died here: IndexError in the report
    out = tmp_path / "out"
    ids = (out / "test_ids.txt").read_text().split()
    key = frames[source].info["inchikey"]
    assert ids.count(key) == 1 and len(ids) == TEST_SIZE  # groups, each once
    from molpre.study.children import load_data
    from molpre.study.plan import read_test_rows

    data = load_data(str(data_path), "u0_atom", "kcal/mol")
    rows = read_test_rows(out / "test_ids.txt", data)
    assert twin in rows and source in rows and len(rows) == TEST_SIZE + 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_test"] == TEST_SIZE + 1
    assert summary["audit"]["enc"]["n_eval"] == TEST_SIZE + 1
    for record in result.records:
        assert len(np.load(record["errors_file"])) == TEST_SIZE + 1, record["arm"]
    probe = summary["probes"]["enc"]
    assert probe["n_test"] == TEST_SIZE + 1 and probe["n_train"] == N_ROWS - TEST_SIZE - 1
    assert summary["clean_vs_overlap"]["enc:full N=20"]["n_clean"] + \
        summary["clean_vs_overlap"]["enc:full N=20"]["n_overlap"] == TEST_SIZE + 1
    again = run_study(config, uri, report_only=True)
    assert again.ran == 0 and again.reused == len(result.records)


def test_budgets_beyond_the_pool_fail_before_any_child(shared_data, tmp_path):
    data_path, *_ = planted(shared_data, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    raw = study_raw(tmp_path, data_path, budgets=[20, 500], encoders=[])
    with pytest.raises(SplitError, match=r"budgets \[500\] exceed the 54 labeled rows"):
        run_study(load_study_config(raw=raw), uri)
    assert not (tmp_path / "out" / "children").exists()
    assert not mlflow.MlflowClient(uri).search_experiments(filter_string="name = 'planted'")
    result = CliRunner().invoke(main, ["study", "--data", str(data_path), "-o",
                                       str(tmp_path / "cli"), "--tracking-uri", uri,
                                       "--set", "target=u0_atom", "--set", "unit=kcal/mol",
                                       "--set", "split.test_size=15", "--set", "budgets=[500]"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert "budgets [500] exceed the 54 labeled rows" in line
