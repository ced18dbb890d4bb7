"""`molpre conformers` in-process: hostile inputs never crash the run and never lose a row."""

from __future__ import annotations

import csv

import ase.io
from click.testing import CliRunner

from molpre.cli import main

HOSTILE = [
    ("ok-ethanol", "CCO"),
    ("bad-smiles", "C1CC(("),
    ("empty", ""),
    ("platinum", "Cl[Pt]Cl"),
    ("silicon", "C[Si](C)(C)C"),
    ("radical", "C[CH2]"),
    ("salt", "CC(=O)[O-].[Na+]"),
    ("charged", "C[NH3+]"),
    ("huge", "C" * 300),
    ("ok-stereo", r"C/C=C\C"),
]
EXPECTED_ERRORS = {
    "bad-smiles": "invalid SMILES", "empty": "empty", "platinum": "Pt", "silicon": "Si",
    "radical": "radical", "huge": "too large",
}


def _run(args):
    return CliRunner().invoke(main, ["conformers", *args], catch_exceptions=False)


def _errors(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_hostile_csv_every_row_is_output_or_error(tmp_path):
    src = tmp_path / "hostile.csv"
    with open(src, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "smiles"])
        writer.writerows(HOSTILE)
    out = tmp_path / "confs.extxyz"
    result = _run([str(src), "-o", str(out), "--n", "2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    frames = ase.io.read(out, index=":")
    produced = {f.info["mol_id"] for f in frames}
    errors = {int(r["row"]): r for r in _errors(tmp_path / "confs.errors.csv")}
    assert produced == {"ok-ethanol", "salt", "charged", "ok-stereo"}
    assert len(produced) + len(errors) == len(HOSTILE)
    for row, (mol_id, smiles) in enumerate(HOSTILE, start=1):
        if mol_id in EXPECTED_ERRORS:
            assert EXPECTED_ERRORS[mol_id] in errors[row]["reason"]
            assert errors[row]["input"].strip() == smiles.strip() or mol_id == "empty"
    by_id = {f.info["mol_id"]: f for f in frames}
    assert by_id["salt"].info["charge"] == -1 and by_id["charged"].info["charge"] == 1
    assert by_id["ok-stereo"].info["smiles"] == r"C/C=C\C"  # backslash survives extxyz
    assert "ok 4, failed 6, conformers" in result.output


def test_smi_through_two_workers_matches_one_worker(tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CCO a\nCCCCO b\nC1CC c\nCC(C)O d\n")
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.extxyz"
        assert _run([str(src), "-o", str(out), "--workers", workers]).exit_code == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0].count("mol_id=b") >= 1


def test_xyz_input_with_broken_frames(tmp_path):
    src = tmp_path / "in.xyz"
    src.write_text("3\nwater\nO 0.0 0.0 0.1173\nH 0.0 0.7572 -0.4692\nH 0.0 -0.7572 -0.4692\n"
                   "2\n\nH 0 0 0\nH 0 0 0.01\n2\n\nH 0 0 0\nH nan 0 0.74\n")
    out = tmp_path / "x.extxyz"
    result = _run([str(src), "-o", str(out), "--n", "1"])
    assert result.exit_code == 0, result.output
    (frame,) = ase.io.read(out, index=":")
    assert frame.info["source"] == "input" and frame.info["smiles"] == "O"
    reasons = [r["reason"] for r in _errors(tmp_path / "x.errors.csv")]
    assert len(reasons) == 2 and "overlapping" in reasons[0] and "non-finite" in reasons[1]


def test_csv_without_smiles_column_is_one_clear_error_before_work(tmp_path):
    src = tmp_path / "nosmiles.csv"
    src.write_text("name,value\nethanol,1\n")
    out = tmp_path / "o.extxyz"
    result = CliRunner().invoke(main, ["conformers", str(src), "-o", str(out)])
    assert result.exit_code == 2
    assert "no SMILES column" in result.output and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "o.errors.csv").exists()


def test_errors_file_has_header_even_when_empty_and_bad_elements_option(tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    out = tmp_path / "o.extxyz"
    assert _run([str(src), "-o", str(out), "--n", "1"]).exit_code == 0
    assert (tmp_path / "o.errors.csv").read_text().strip() == "row,input,reason"
    bad = CliRunner().invoke(main, ["conformers", str(src), "-o", str(out), "--elements", "H,Xx"])
    assert bad.exit_code == 2 and "unknown element symbol" in bad.output


def test_help_explains_the_command():
    result = CliRunner().invoke(main, ["conformers", "--help"])
    assert result.exit_code == 0
    for word in ("--n", "--seed", "--workers", "--smiles-col", "--elements", "errors.csv"):
        assert word in result.output


def test_truncated_gzip_stops_with_one_clear_error_and_keeps_rows(tmp_path):
    import gzip

    whole = gzip.compress(("smiles\n" + "CCO\nCCN\n" * 400).encode())
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "cut.extxyz"
    result = CliRunner().invoke(main, ["conformers", str(src), "-o", str(out), "--n", "1"])
    assert result.exit_code == 1 and "stopped after" in result.output
    assert "Traceback" not in result.output and out.stat().st_size > 0


def test_undecodable_bytes_become_error_rows(tmp_path):
    src = tmp_path / "junk.smi"
    src.write_bytes(b"CCO ok\n\xff\xfe\x00garbage bad\n")
    out = tmp_path / "junk.extxyz"
    assert _run([str(src), "-o", str(out), "--n", "1"]).exit_code == 0
    (row,) = _errors(tmp_path / "junk.errors.csv")
    assert row["row"] == "2" and "invalid SMILES" in row["reason"]


def test_output_option_is_spelled_like_the_other_commands(tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    for flag in ("-o", "--output", "--out"):  # --out: the old spelling, kept as a hidden alias
        out = tmp_path / f"{flag.strip('-')}.extxyz"
        assert _run([str(src), flag, str(out), "--n", "1"]).exit_code == 0
        assert len(ase.io.read(out, index=":")) == 1
    help_text = CliRunner().invoke(main, ["conformers", "--help"]).output
    assert "-o, --output" in help_text and "--out " not in help_text
    missing = CliRunner().invoke(main, ["conformers", str(src)])
    assert missing.exit_code == 2 and "--output" in missing.output


def test_a_molecule_too_large_to_embed_says_why(tmp_path):
    src = tmp_path / "big.smi"
    src.write_text("C" * 200 + " c200\nCCO small\n")
    out = tmp_path / "big.extxyz"
    result = _run([str(src), "-o", str(out), "--n", "1", "--max-heavy-atoms", "400",
                   "--embed-timeout", "1"])
    assert result.exit_code == 0, result.output
    (row,) = _errors(tmp_path / "big.errors.csv")
    assert row["row"] == "1" and "Bad Conformer Id" not in row["reason"]
    assert "embedding failed" in row["reason"] and "1 s timeout" in row["reason"]
    assert "--embed-timeout" in row["reason"]
    assert [f.info["mol_id"] for f in ase.io.read(out, index=":")] == ["small"]
