"""The MLflow pyfunc takes MOSES-style tables (``SMILES``, extra columns) and keeps them."""

import mlflow
import pandas as pd
import pytest
import torch

from molpre.inference.predictor import Predictor
from molpre.inference.pyfunc import save_pyfunc_model
from molpre.models.checkpoint import save_checkpoint
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder

ATOMREF = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}


@pytest.fixture(scope="module")
def pyfunc_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), ATOMREF, energy_scale=0.1)
    root = tmp_path_factory.mktemp("pyfunc")
    ckpt = save_checkpoint(model, root / "model.ckpt", meta={"cutoff": 4.5})
    return save_pyfunc_model(ckpt, root / "model")


def test_pyfunc_takes_uppercase_smiles_and_keeps_columns(pyfunc_dir):
    pyfunc = mlflow.pyfunc.load_model(str(pyfunc_dir))
    table = pd.DataFrame({"SMILES": ["CCO", "C1CC", "c1ccccc1"], "SPLIT": ["a", "b", "c"]})
    out = pyfunc.predict(table, params={"n_conformers": 1})
    assert out["SPLIT"].tolist() == ["a", "b", "c"]
    assert out["status"].tolist() == ["ok", "error", "ok"]
    direct = Predictor.load(pyfunc_dir, n_conformers=1, progress=False).predict(["CCO", "c1ccccc1"])
    assert out["energy_ev"][[0, 2]].tolist() == pytest.approx(direct["energy_ev"].tolist(), abs=1e-6)
    named = pyfunc.predict(pd.DataFrame({"structure": ["CC"]}),
                           params={"smiles_col": "structure", "n_conformers": 1})
    assert named["status"].tolist() == ["ok"] and named["smiles"].tolist() == ["CC"]


def _no_constants(name):
    raise ValueError(f"not JSON: {name}")


def test_error_rows_serve_as_strict_json_nulls(pyfunc_dir):
    """The scoring server's own serializer (what `mlflow models serve` answers with) gives
    null for an error row's values, which a strict parser accepts; NaN was not JSON."""
    import io
    import json

    from mlflow.pyfunc.scoring_server import predictions_to_json

    pyfunc = mlflow.pyfunc.load_model(str(pyfunc_dir))
    out = pyfunc.predict(pd.DataFrame({"SMILES": ["CCO", "C1CC"], "x": [1.5, float("nan")]}),
                         params={"n_conformers": 1})
    buffer = io.StringIO()
    predictions_to_json(out, buffer)
    rows = json.loads(buffer.getvalue(), parse_constant=_no_constants)["predictions"]
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert isinstance(rows[0]["energy_ev"], float) and rows[1]["energy_ev"] is None
    assert rows[1]["energy_minus_atomref_ev"] is None and rows[1]["x"] is None
    with pytest.raises(ValueError, match="not JSON: NaN"):  # what the Predictor's NaN gave
        json.loads(json.dumps({"v": float("nan")}), parse_constant=_no_constants)
