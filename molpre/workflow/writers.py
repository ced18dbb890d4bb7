"""Write: the one writer per job, in the submitting process, fed as chunks finish.

Each writer turns a task's :class:`~molpre.workflow.tasks.Outcome` into ledger rows (and, for
labels, store rows), and ``finish`` builds the job's output from the ledger:

* label: every conformer's label into the label store (``molpre.data.store.write_row``, one
  transaction each) as it arrives; ``OUT.rows.csv`` lists every input row at the end;
* predict: ``OUT`` (.parquet or .csv) with the input's own columns and molpre's beside them;
* corpus: pretraining shards in ``OUT/`` through :class:`molpre.data.shards.ShardWriter`
  (with each geometry's labels when the job labels them);
* fragments: ``OUT`` (CSV: smiles, mol_id, parent_id, heavy_atoms), each fragment once, in
  the order of the first input molecule that has it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from molpre.workflow.ledger import Ledger, LedgerRow
from molpre.workflow.tasks import Outcome

#: Predictor columns that the ledger row already carries (mol_id, status, error).
LEDGER_COLUMNS = ("id", "status", "error")


def _plain(value):
    """numpy scalars (float32, bool_) as the JSON number or bool they hold."""
    return value.item() if hasattr(value, "item") else str(value)


def _row(outcome: Outcome, payload=None, error: str | None = None) -> LedgerRow:
    error = error if error is not None else outcome.error
    return LedgerRow(outcome.row, outcome.mol_id, outcome.input, "error" if error else "ok",
                     error or "", payload)


def write_rows_csv(ledger: Ledger, job: str, path: Path) -> None:
    """``row,mol_id,input,status,reason`` for every recorded input row, in input order."""
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["row", "mol_id", "input", "status", "reason"])
        for r in ledger.rows(job):
            out.writerow([r.row, r.mol_id, r.input, r.status, r.reason])


class LabelWriter:
    """Labels into an ASE label store; one ledger row per input molecule."""

    def __init__(self, out: str | Path, level) -> None:
        from molpre.data.store import open_store
        from molpre.qc.runner import level_meta

        self.out, self.db, self.meta = Path(out), open_store(out), level_meta(level)
        self.stored = self.already = 0

    def rows(self, outcome: Outcome) -> list[LedgerRow]:
        from molpre.data.store import write_row

        if outcome.error:
            return [_row(outcome)]
        failures = []
        for atoms, key, result in outcome.value:
            if write_row(self.db, atoms, key, result, self.meta) is None:
                self.already += 1
            else:
                self.stored += 1
            if not result.ok:
                failures.append(f"conformer {atoms.info.get('conf_id', '?')}: {result.reason}")
        payload = json.dumps({"conformers": len(outcome.value),
                              "labels_ok": len(outcome.value) - len(failures)})
        return [_row(outcome, payload, "; ".join(failures)[:500] if failures else "")]

    def finish(self, ledger: Ledger, job: str) -> dict:
        write_rows_csv(ledger, job, self.out.with_name(self.out.name + ".rows.csv"))
        return {"labels_stored": self.stored, "labels_already_stored": self.already}


class PredictWriter:
    """Predictions into a table that keeps the input's columns."""

    def __init__(self, out: str | Path, input_path: str | Path) -> None:
        self.out, self.input_path = Path(out), Path(input_path)

    def rows(self, outcome: Outcome) -> list[LedgerRow]:
        """Every column of the Predictor's row (one per target with its unit, committee
        ``_std`` and ``ood`` columns, ...) except those the ledger row carries."""
        value = outcome.value or {}
        payload = json.dumps({k: v for k, v in value.items() if k not in LEDGER_COLUMNS},
                             default=_plain)
        return [_row(outcome, payload)]

    def finish(self, ledger: Ledger, job: str) -> dict:
        import pandas as pd

        table = _input_table(self.input_path)
        ours = []
        for r in ledger.rows(job):
            value = json.loads(r.payload) if r.payload else {}
            if r.status != "ok":  # no made-up values on an error row
                value = {k: v for k, v in value.items() if k in ("smiles", "n_conformers")}
            ours.append({"row": r.row, "mol_id": r.mol_id, **value,
                         "status": r.status, "error": r.reason})
        ours = _predict_table(ours)
        if table is None:
            table = pd.DataFrame({"input": [r.input for r in ledger.rows(job)]},
                                 index=ours.index)
        ours.columns = [f"molpre_{c}" if c in table.columns else c for c in ours.columns]
        merged = table.join(ours, how="left")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.out.suffix.lower() == ".parquet":
            merged.to_parquet(self.out, index=False)
        else:
            merged.to_csv(self.out, index=False)
        return {"rows_written": len(merged)}


def _predict_table(rows: list[dict]):
    """molpre's columns in the Predictor's order (mol_id, smiles, values, flags, status,
    error, n_conformers), indexed by input row; missing values are NaN."""
    import pandas as pd

    table = pd.DataFrame(rows).set_index("row")
    if "smiles" not in table:
        table["smiles"] = ""
    table["smiles"] = table["smiles"].fillna("")
    table["n_conformers"] = table.get("n_conformers", 0)
    table["n_conformers"] = table["n_conformers"].fillna(0).astype(int)
    values = [c for c in table.columns
              if c not in ("mol_id", "smiles", "status", "error", "n_conformers")]
    return table[["mol_id", "smiles", *values, "status", "error", "n_conformers"]]


def _input_table(path: Path):
    """The input's own columns for CSV/TSV, indexed by 1-based data row; None otherwise."""
    import pandas as pd

    suffix = Path(path.stem).suffix if path.suffix == ".gz" else path.suffix
    if suffix.lower() not in (".csv", ".tsv"):
        return None
    table = pd.read_csv(path, sep="\t" if suffix.lower() == ".tsv" else ",", dtype=str,
                        keep_default_na=False, skip_blank_lines=False)
    table.index = range(1, len(table) + 1)
    return table


def _pack(numbers: np.ndarray, positions: np.ndarray, energies: np.ndarray | None = None,
          forces: np.ndarray | None = None) -> bytes:
    """One molecule's arrays as an uncompressed npz (no pickle)."""
    arrays = {"numbers": numbers, "positions": positions}
    if energies is not None:
        arrays["energies"] = energies
    if forces is not None:
        arrays["forces"] = forces
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class _Shim:
    """What ShardWriter reads from an intake record."""

    def __init__(self, r: LedgerRow, extra: dict) -> None:
        from rdkit import Chem

        self.row, self.mol_id, self.input = r.row, r.mol_id, r.input
        self.smiles, self.inchikey = extra.get("smiles", ""), extra.get("inchikey", "")
        self.mol = Chem.MolFromSmiles(self.smiles) if self.smiles else None


class CorpusWriter:
    """Conformers journalled in the ledger, then written as shards in input order."""

    def __init__(self, out: str | Path, shard_size: int, settings: dict) -> None:
        self.out, self.shard_size, self.settings = Path(out), shard_size, settings

    def rows(self, outcome: Outcome) -> list[LedgerRow]:
        if outcome.error:
            return [_row(outcome)]
        extra = json.dumps({"smiles": outcome.extra.get("smiles", ""),
                            "inchikey": outcome.extra.get("inchikey", ""),
                            "label_failed": outcome.extra.get("label_failed", 0)})
        return [_row(outcome, extra.encode() + b"\n" + _pack(*outcome.value))]

    def finish(self, ledger: Ledger, job: str) -> dict:
        from ase import Atoms

        from molpre.data.shards import ShardWriter

        writer = ShardWriter(self.out, shard_size=self.shard_size, settings=self.settings)
        for r in ledger.rows(job):
            if r.status != "ok":
                writer.add(r, [], r.reason)
                continue
            head, _, blob = bytes(r.payload).partition(b"\n")
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                numbers, positions = data["numbers"], data["positions"]
                energies = data["energies"] if "energies" in data else None
                forces = data["forces"] if "forces" in data else None
            frames = [Atoms(numbers=numbers, positions=p) for p in positions]
            writer.add(_Shim(r, json.loads(head)), frames, energies=energies, forces=forces)
        manifest = writer.close()
        return {"molecules": manifest["molecules"], "conformers": manifest["conformers"],
                "shards": len(manifest["shards"])}


class FragmentWriter:
    """Unique fragments into one CSV; one ledger row per input molecule (its fragments)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def rows(self, outcome: Outcome) -> list[LedgerRow]:
        if outcome.error:
            return [_row(outcome)]
        payload = "\n".join(outcome.value)
        return [_row(outcome, payload, "" if outcome.value else "no fragment in range")]

    def finish(self, ledger: Ledger, job: str) -> dict:
        from rdkit import Chem

        from molpre.outputs import atomic_output

        seen: set[str] = set()
        with atomic_output(self.out, newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["smiles", "mol_id", "parent_id", "heavy_atoms"])
            for r in ledger.rows(job):
                for smiles in (r.payload or "").split("\n") if r.status == "ok" else ():
                    if smiles and smiles not in seen:
                        seen.add(smiles)
                        heavy = Chem.MolFromSmiles(smiles).GetNumHeavyAtoms()
                        out.writerow([smiles, f"frag-{len(seen)}", r.mol_id, heavy])
        return {"fragments": len(seen)}
