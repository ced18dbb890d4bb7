"""The demo's labeled set: the smallest valid molecules of the allowed elements; the rest of
the valid ones are the corpus (real RDKit records)."""

from __future__ import annotations

from molpre.chem import records_from_smiles
from molpre.demo import DemoConfig, delta_level, split_corpus

SMILES = ["CCCl", "CO", "c1ccccc1", "CCO", "not-a-smiles", "CCS", "CCCCCCCCCCCC"]


def _smiles(records):
    return [r.smiles for r in records]


def test_labeled_are_the_smallest_of_the_allowed_elements():
    hcnof = ("H", "C", "N", "O", "F")
    labeled, corpus, rejected = split_corpus(records_from_smiles(SMILES), 3, 20, hcnof)
    # CCCl (8 atoms) and CCS (9) are smaller than benzene (12) but not allowed
    assert _smiles(labeled) == ["CO", "c1ccccc1", "CCO"]  # input order
    assert _smiles(corpus) == ["CCCl", "CCS", "CCCCCCCCCCCC"]
    assert len(rejected) == 1


def test_any_element_when_none_given():
    labeled, corpus, _ = split_corpus(records_from_smiles(SMILES), 3, 20, None)
    assert _smiles(labeled) == ["CCCl", "CO", "CCO"]  # 8, 6, 9 atoms (H included), input order
    assert "CCS" in _smiles(corpus)  # 9 atoms too, after CCO in the input


def test_delta_level_none_turns_delta_off():
    assert delta_level(DemoConfig()) == "gfn2-xtb"
    for off in ("none", "", "None", "off"):
        assert delta_level(DemoConfig(delta=off)) is None


def test_an_unknown_delta_level_is_one_line_before_any_work(tmp_path):
    from click.testing import CliRunner

    from molpre.cli import main

    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--delta", "bogus", "-o", str(out)])
    assert result.exit_code == 1
    assert "cannot read a level of theory from 'bogus'" in result.output
    assert "Traceback" not in result.output
    assert not (out / "labels.db").exists()  # nothing labeled
