"""Per-stage rates of the labeled-corpus recipe, one worker, with the machine's load.

Stages, each timed on the same molecules in one process (threads pinned to 1):

1. fragments: MOSES molecules -> QM9-sized fragments (molpre.chem.fragments), molecules/s;
2. conformers: ETKDG + MMFF (molpre.chem.embed_conformers, 2 a molecule), molecules/s;
3. labels: GFN2-xTB energy + forces of every conformer and one displaced copy, geometries/s;
4. the same labels at HF/STO-3G (PySCF) on a tenth of the geometries, for the ratio.

Prints a table and an estimate for 1M molecules on W workers (from the measured rates,
ignoring the scheduler). Usage::

    python bench/corpus_rates.py --moses ../shared/data/moses_train.csv.gz --molecules 300
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DEFAULT_MOSES = Path(__file__).resolve().parents[2] / "shared" / "data" / "moses_train.csv.gz"


def _timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - start


def fragment_stage(smiles: list[str]) -> tuple[list[str], float]:
    from molpre.chem.fragments import unique_fragments

    return _timed(lambda s: list(unique_fragments(s)), smiles)


def conformer_stage(fragments: list[str]):
    from molpre.chem import embed_conformers, record_from_smiles

    def run(items):
        frames = []
        for i, smiles in enumerate(items):
            try:
                frames.extend(embed_conformers(record_from_smiles(smiles, f"f{i}"), n=2, seed=0))
            except Exception:  # noqa: BLE001 - a failed embedding is simply not counted
                pass
        return frames

    return _timed(run, fragments)


def label_stage(frames, level_text: str):
    from molpre.chem.perturb import perturbed_copies
    from molpre.qc import compute_many, parse_level

    geometries = perturbed_copies(frames, 1, 0.05, 0)
    results, seconds = _timed(compute_many, geometries, parse_level(level_text), True)
    return sum(r.ok for r in results), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moses", type=Path, default=DEFAULT_MOSES)
    parser.add_argument("--molecules", type=int, default=300, help="MOSES molecules to read")
    parser.add_argument("--fragments", type=int, default=200, help="fragments to embed/label")
    parser.add_argument("--workers", type=int, default=100, help="workers of the estimate")
    args = parser.parse_args()
    with gzip.open(args.moses, "rt") as handle:
        next(handle)
        smiles = [line.strip() for line in itertools.islice(handle, args.molecules)]
    load = os.getloadavg()
    fragments, t_frag = fragment_stage(smiles)
    import random

    chosen = random.Random(0).sample(fragments, min(args.fragments, len(fragments)))
    frames, t_conf = conformer_stage(chosen)
    n_xtb, t_xtb = label_stage(frames, "gfn2-xtb")
    few = frames[:max(2, len(frames) // 10)]
    n_hf, t_hf = label_stage(few, "hf/sto-3g")
    rows = [
        ("fragments", f"{len(smiles)} MOSES molecules", len(smiles) / t_frag,
         f"{len(fragments)} unique fragments"),
        ("conformers", f"{len(chosen)} fragments", len(chosen) / t_conf,
         f"{len(frames)} conformers"),
        ("GFN2-xTB E+F", f"{2 * len(frames)} geometries", n_xtb / t_xtb, "conformers + copies"),
        ("HF/STO-3G E+F", f"{2 * len(few)} geometries", n_hf / t_hf, "the same path, PySCF"),
    ]
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"(cores {os.cpu_count()}); after: {os.getloadavg()[0]:.2f}")
    print(f"{'stage':<16}{'input':<26}{'per s, 1 worker':>16}  note")
    for name, what, rate, note in rows:
        print(f"{name:<16}{what:<26}{rate:>16.1f}  {note}")
    per_fragment_s = 1 / rows[1][2] + (len(frames) / len(chosen)) * 2 / rows[2][2]
    frag_per_parent = len(fragments) / len(smiles)
    print(f"xTB vs HF/STO-3G per geometry: {rows[2][2] / rows[3][2]:.0f}x")
    hours = 1e6 * per_fragment_s / args.workers / 3600
    parents = 1e6 / frag_per_parent / rows[0][2] / args.workers / 3600
    print(f"1M fragment molecules (2 conformers + 1 copy each, xTB E+F) on {args.workers} "
          f"workers: {hours:.2f} h, plus {parents:.2f} h fragmenting "
          f"{1e6 / frag_per_parent:,.0f} parents ({frag_per_parent:.2f} new fragments each "
          "at this sample's size: fewer as the set grows)")


if __name__ == "__main__":
    main()
