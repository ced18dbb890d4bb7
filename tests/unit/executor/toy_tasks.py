"""A toy task for the run-core tests, in a module light enough for a pool worker to import."""

import os
import time


class Rec:
    """A stand-in for a MoleculeRecord (row, mol_id, input)."""

    def __init__(self, row):
        self.row, self.mol_id, self.input = row, f"m{row}", str(row)


def square_or_die(records, params):
    """Dies on params['die'] rows, raises on 'raise' (ValueError) and 'fatal' (LookupError),
    hangs on 'hang', else returns row**2."""
    out = []
    for r in records:
        time.sleep(params.get("sleep", 0))
        if r.row in params.get("hang", ()):
            time.sleep(3600)  # stuck where no clock is checked
        if r.row in params.get("fatal", ()):
            raise LookupError(f"fatal row {r.row}")
        if r.row in params["die"]:
            os._exit(7)
        if r.row in params["raise"]:
            raise ValueError(f"bad row {r.row}")
        out.append((r.row, r.row ** 2))
    return out


def whoami(records, params):
    """(row, worker pid, its OMP_NUM_THREADS) per record."""
    return [(r.row, os.getpid(), os.environ.get("OMP_NUM_THREADS")) for r in records]


def flaky(item):
    """One call of map_calls: ``(kind, value, marker path)``: ``ok`` returns value * 10;
    ``die_once`` kills its worker the first time (leaving the marker), then returns;
    ``hang`` sleeps past any deadline; ``raise`` raises ValueError."""
    kind, value, marker = item
    if kind == "die_once" and not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
        os._exit(9)
    if kind == "hang":
        time.sleep(3600)
    if kind == "raise":
        raise ValueError(f"bad item {value}")
    return value * 10
