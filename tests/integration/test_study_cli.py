"""`molpre audit`, `molpre study --help`, `molpre ui --help` in-process (real RDKit, real data)."""

import csv
import json

import ase.io
import pytest
from click.testing import CliRunner

from molpre.cli import main

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"


def test_audit_counts_planted_duplicates_and_drops_them(tmp_path):
    frames = ase.io.read(QM9, index=":40", format="extxyz")
    ase.io.write(tmp_path / "eval.extxyz", frames, format="extxyz")
    with open(tmp_path / "corpus.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["mol_id", "smiles"])
        w.writerows([["a", "c1ccccc1O"], ["b", frames[5].info["smiles"]], ["c", frames[9].info["smiles"]]])
    result = CliRunner().invoke(main, ["audit", "--corpus", str(tmp_path / "corpus.csv"),
                                       "--eval", str(tmp_path / "eval.extxyz"), "--smiles-col",
                                       "smiles", "--json", "--drop", str(tmp_path / "clean.csv")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[:result.output.rindex("}") + 1])
    assert summary["counts"]["inchikey"] == 2 and summary["n_corpus"] == 3
    assert "wrote 1 molecules" in result.output


@pytest.mark.slow  # reads the 3,000-frame file twice (~1 min); the unit test covers the rule
def test_audit_rejects_a_probe_set_from_the_test_split():
    args = ["audit", "--probe", "--corpus", QM9, "--eval", QM9, "--eval-first", "1000",
            "--probe-limit", "500"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "169 of the 500 probe molecules are in the test split" in result.output


def test_help_of_study_and_ui():
    for name in ("study", "ui", "audit"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
