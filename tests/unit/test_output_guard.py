"""The one output guard (molpre.outputs.guard): is / inside / contains, through links; the
shape and writability of every output; all before any work, one line naming both paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from molpre.outputs import OutputError, check_writable, folder, guard


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    model = tmp_path / "ft3"
    (model / "model" / "artifacts").mkdir(parents=True)
    (model / "model.ckpt").write_bytes(b"weights")
    (model / "model" / "artifacts" / "model.ckpt").write_bytes(b"weights")
    data = tmp_path / "x.smi"
    data.write_text("CCO a\n")
    return {"model": model, "data": data}


def refused(outputs, inputs_) -> str:
    with pytest.raises(OutputError) as err:
        guard(outputs, inputs_)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_an_output_that_is_an_input_is_refused_naming_both(inputs):
    text = refused([inputs["data"]], [inputs["data"], inputs["model"]])
    assert "it is the input" in text and text.count("x.smi") == 2


def test_an_output_inside_a_model_folder_is_refused(inputs):
    ckpt = inputs["model"] / "model" / "artifacts" / "model.ckpt"
    text = refused([ckpt], [inputs["data"], inputs["model"]])
    assert "lies inside the input folder" in text and str(inputs["model"]) in text


def test_an_output_folder_holding_an_input_is_refused(inputs, tmp_path):
    text = refused([folder(tmp_path)], [inputs["data"]])
    assert "holds the input" in text and "x.smi" in text


def test_links_do_not_hide_an_input(inputs, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(inputs["data"])
    assert "through a link" in refused([link], [inputs["data"]])
    into = tmp_path / "into_model"
    into.symlink_to(inputs["model"] / "model")
    assert "inside the input folder" in refused([into / "p.csv"], [inputs["model"]])
    hard = tmp_path / "hard.smi"
    os.link(inputs["data"], hard)
    assert "it is the input" in refused([hard], [inputs["data"]])
    twin = tmp_path / "copy.ckpt"
    os.link(inputs["model"] / "model.ckpt", twin)
    text = refused([twin], [inputs["model"]])
    assert "hard link to" in text and "model.ckpt" in text


def test_shape_and_writability(tmp_path, read_only_folder):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(OutputError, match="afile is a file, not a folder"):
        guard([afile / "p.csv"], [])
    with pytest.raises(OutputError, match="it is a file, not a folder"):
        guard([folder(afile)], [])
    with pytest.raises(OutputError, match="it is a folder"):
        guard([tmp_path], [])
    with pytest.raises(OutputError, match="not writable"):
        check_writable(folder(read_only_folder / "new" / "deeper"))
    guard([tmp_path / "new" / "p.csv", folder(tmp_path / "out")], [])  # fine: creatable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ro"]  # probes cleaned up


def test_urls_and_missing_inputs_are_skipped(tmp_path):
    guard(["postgresql://host/db", tmp_path / "p.csv"],
          ["runs:/abc/model", "models:/m@champion", tmp_path / "absent.smi", None])
