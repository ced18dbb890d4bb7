"""The batch predict writer keeps every Predictor column (all targets, committee spread)."""

import numpy as np
import pandas as pd

from molpre.workflow.ledger import Ledger, ledger_path
from molpre.workflow.tasks import Outcome
from molpre.workflow.writers import PredictWriter


def _value(smiles: str, energy: float, status: str = "ok", error: str = "") -> dict:
    """A row as a committee Predictor with energy and gap heads returns it."""
    return {"id": "x", "smiles": smiles, "energy_ev": energy, "energy_ev_std": np.float32(0.25),
            "gap_ev": 7.5, "gap_ev_std": 0.1, "ood": np.bool_(False), "ood_reason": "",
            "status": status, "error": error, "n_conformers": 2}


def test_every_target_and_committee_column_reaches_the_table(tmp_path):
    source = tmp_path / "lib.csv"
    source.write_text("name,smiles\nethanol,CCO\nbroken,C1CC\nwater,O\n")
    out = tmp_path / "pred.csv"
    ledger = Ledger(ledger_path(out))
    ledger.register("j", "predict", {}, str(source), "sha")
    writer = PredictWriter(out, source)
    outcomes = [Outcome(1, "m1", "CCO", None, _value("CCO", -4200.0)),
                Outcome(2, "m2", "C1CC", "unparsable SMILES", None),
                Outcome(3, "m3", "O", None, _value("O", -2080.5))]
    for outcome in outcomes:
        ledger.record("j", writer.rows(outcome))
    writer.finish(ledger, "j")
    table = pd.read_csv(out, keep_default_na=True)
    assert table["name"].tolist() == ["ethanol", "broken", "water"]  # input columns kept
    for column in ("energy_ev", "energy_ev_std", "gap_ev", "gap_ev_std", "ood"):
        assert column in table.columns, column
    assert table["energy_ev"].tolist()[::2] == [-4200.0, -2080.5]
    assert table.loc[1, ["energy_ev", "gap_ev", "energy_ev_std"]].isna().all()  # no made-up
    assert table["energy_ev_std"][0] == 0.25 and table["status"].tolist() == ["ok", "error", "ok"]
    assert table["error"][1] == "unparsable SMILES"
    assert "molpre_smiles" in table.columns  # ours renamed beside the input's own
    ledger.close()
