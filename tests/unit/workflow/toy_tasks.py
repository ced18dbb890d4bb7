"""A toy task for the run-core tests, in a module light enough for a pool worker to import."""

import os


class Rec:
    """A stand-in for a MoleculeRecord (row, mol_id, input)."""

    def __init__(self, row):
        self.row, self.mol_id, self.input = row, f"m{row}", str(row)


def square_or_die(records, params):
    """Dies on the rows in params['die'], raises on params['raise'], else returns row**2."""
    out = []
    for r in records:
        if r.row in params["die"]:
            os._exit(7)
        if r.row in params["raise"]:
            raise ValueError(f"bad row {r.row}")
        out.append((r.row, r.row ** 2))
    return out
