"""Outputs never destroy inputs, replace a target only when complete, and fail in one line."""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
import pytest
from ase.build import molecule
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.store import open_store, write_row
from molpre.outputs import OutputError, atomic_output, refuse_overwriting_inputs
from molpre.qc.pyscf import QCResult


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A folder nobody may create files in (chmod 555; /sys where we run as root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        yield folder
    else:  # root ignores permissions
        (folder / "probe").unlink()
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _creatable("/sys"):
            pytest.skip("no read-only folder available")
        yield Path("/sys")
    folder.chmod(0o755)


def _creatable(folder: str) -> bool:
    try:
        Path(folder, ".molpre-probe").touch()
    except OSError:
        return False
    Path(folder, ".molpre-probe").unlink()
    return True


def test_conformers_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("smiles\nCCO\n")
    line = one_line_error(invoke("conformers", src, "-o", src))
    assert "refusing to write" in line and "in.csv" in line
    assert src.read_text() == "smiles\nCCO\n"


def test_conformers_refuses_when_the_errors_sidecar_is_the_input(tmp_path):
    src = tmp_path / "run1.errors.csv"
    src.write_text("row,input,reason\n1,C1CC((,invalid SMILES\n")
    before = src.read_text()
    line = one_line_error(invoke("conformers", src, "-o", tmp_path / "run1.extxyz"))
    assert "run1.errors.csv" in line and "input" in line
    assert src.read_text() == before and not (tmp_path / "run1.extxyz").exists()


def test_a_symlink_to_the_input_is_refused_too(tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    link = tmp_path / "out.extxyz"
    link.symlink_to(src)
    one_line_error(invoke("conformers", src, "-o", link))
    assert src.read_text() == "CCO\n"


def test_export_refuses_to_overwrite_the_store(tmp_path):
    db_path = tmp_path / "labels.db"
    db = open_store(db_path)
    write_row(db, molecule("H2"), "k1", QCResult(ok=False, reason="x"), {"level": "hf"})
    size = db_path.stat().st_size
    line = one_line_error(invoke("export", db_path, "-o", db_path))
    assert "refusing" in line and db_path.stat().st_size == size
    assert open_store(db_path, write=False).count() == 1


def test_predict_refuses_to_overwrite_its_input_before_loading_a_model(tmp_path):
    src = tmp_path / "x.smi"
    src.write_text("CCO\n")
    line = one_line_error(invoke("predict", src, "--model", tmp_path / "nomodel", "-o", src))
    assert "refusing" in line and src.read_text() == "CCO\n"


@pytest.mark.parametrize("output", ["x.extxyz", "labels.json"])
def test_label_wants_a_db_store(tmp_path, output):
    src = tmp_path / "in.extxyz"
    ase.io.write(src, [molecule("H2")], format="extxyz")
    before = src.read_text()
    line = one_line_error(invoke("label", src, "-o", tmp_path / output,
                                 "--method", "hf", "--basis", "sto-3g"), code=2)
    assert ".db" in line and "postgresql://" in line
    assert src.read_text() == before and not (tmp_path / "x.extxyz").exists()


def test_label_onto_its_input_is_refused_by_the_guard_first(tmp_path):
    src = tmp_path / "in.extxyz"
    ase.io.write(src, [molecule("H2")], format="extxyz")
    before = src.read_text()
    line = one_line_error(invoke("label", src, "-o", src, "--method", "hf", "--basis", "sto-3g"))
    assert "refusing to write" in line and "it is the input" in line
    assert src.read_text() == before


def test_conformers_crash_keeps_the_previous_output(tmp_path, monkeypatch):
    import molpre.chem

    src, out = tmp_path / "in.smi", tmp_path / "out.extxyz"
    src.write_text("CCO a\nCCN b\n")
    out.write_text("previous run\n")
    (tmp_path / "out.errors.csv").write_text("previous errors\n")

    def crashing_stream(records, **kwargs):
        raise KeyboardInterrupt
        yield  # a generator, like the real one

    monkeypatch.setattr(molpre.chem, "conformer_stream", crashing_stream)
    result = invoke("conformers", src, "-o", out)
    assert result.exit_code != 0
    assert out.read_text() == "previous run\n"
    assert (tmp_path / "out.errors.csv").read_text() == "previous errors\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.smi", "out.errors.csv",
                                                           "out.extxyz"]


def test_read_only_output_folder_is_one_line_for_every_command(tmp_path, read_only_dir):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    line = one_line_error(invoke("conformers", src, "-o", read_only_dir / "c.extxyz"))
    assert str(read_only_dir) in line
    frames = tmp_path / "in.extxyz"
    ase.io.write(frames, [molecule("H2")], format="extxyz")
    line = one_line_error(invoke("label", frames, "-o", read_only_dir / "l.db",
                                 "--method", "hf", "--basis", "sto-3g", "--workers", "1",
                                 "--threads", "1"))
    assert "cannot write" in line and "l.db" in line and "writable" in line
    db = open_store(tmp_path / "l.db")
    write_row(db, molecule("H2"), "k1", QCResult(ok=False, reason="x"), {"level": "hf"})
    line = one_line_error(invoke("export", tmp_path / "l.db", "-o", read_only_dir / "x.extxyz",
                                 "--include-failed"))
    assert "cannot write" in line and "writable" in line


def test_atomic_output_replaces_only_on_success_and_keeps_the_mode(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]
    with atomic_output(target) as handle:
        handle.write("new")
        assert target.read_text() == "old"  # not replaced before the block ends
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640


def test_refuse_overwriting_inputs_sees_through_hard_links(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("x")
    os.link(src, tmp_path / "b.csv")
    with pytest.raises(OutputError, match="a.csv"):
        refuse_overwriting_inputs([tmp_path / "b.csv"], [src])
    refuse_overwriting_inputs([tmp_path / "c.csv", "postgresql://h/db"], [src])  # fine
