"""What a blend with delta-KRR would give the delta arms of finished studies (a bench
analysis, not a molpre model: no Predictor serves it).

For every neural child of the given delta studies (OUT/children/<slug>/model.ckpt), on its
own split (OUT/children/<slug>/split.csv):

- the child's prediction of the energy at each test molecule (its committee's mean plus
  ``s x E_cheap`` and the per-element offsets of its Delta, read from the study's store);
- KRR on FCHL19 of the same delta target (``energy - s x E_cheap``, the child's own ``s``)
  over the child's N labelled molecules (train and validation rows), sigma and lambda by
  5-fold CV inside them on the studies' grid (molpre.study.baselines, as the ``krr``
  baseline arm);
- the blend ``(1 - w) x child + w x KRR``, ``w`` fixed before any test set was read
  (``--weight``, 0.25: ./README.md, chosen on the development set).

Prints, per arm and budget, the child's, KRR's and the blend's test MAE (kcal/mol, mean
[95% interval] over seeds, molpre.study.stats), then each encoder arm's blend against the
scratch blend and the control's blend (paired by seed). Writes OUT/blend.csv (one row per
child).

    python bench/results/qm9_xtb/blend/blend_krr.py DATA OUT STUDY_DIR [STUDY_DIR ...] [--weight 0.25]
        [--control-of ARM=OTHER] [--report-only]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from molpre.data.datasets import load_labeled  # noqa: E402
from molpre.delta import Delta, cheap_labels  # noqa: E402
from molpre.models.checkpoint import load_checkpoint  # noqa: E402
from molpre.study import baselines as B  # noqa: E402
from molpre.study.stats import bootstrap_ci, paired_difference  # noqa: E402
from molpre.study.teaching import teacher_labels  # noqa: E402
from molpre.units import KCAL_PER_MOL_TO_EV  # noqa: E402

SIGMAS = [1, 2, 4, 8, 16, 32]
LAMBDAS = [1.0e-10, 1.0e-8, 1.0e-6, 1.0e-4]


def children(study: Path):
    """(arm, N, seed, folder) of every neural child of a study folder."""
    for child in sorted((study / "children").iterdir()):
        if not (child / "model.ckpt").exists():
            continue
        stem, _, seed = child.name.rpartition("-s")
        arm, _, budget = stem.rpartition("-N")
        yield arm, int(budget), int(seed), child


def krr_predictions(kernel, numbers, labels, fit, test) -> np.ndarray:
    """KRR (CV-chosen sigma and lambda inside ``fit``) predictions of ``labels`` at ``test``."""
    s, lam, _ = B.cv_choice(kernel, numbers, labels, fit, SIGMAS, LAMBDAS, 5, 0)
    residual, prior = B._residual(numbers, labels, fit, fit, B.PER_ELEMENT)
    alpha = B._solve(kernel[s][np.ix_(fit, fit)], residual, lam)
    return kernel[s][np.ix_(test, fit)] @ alpha + prior.predict([numbers[i] for i in test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("studies", nargs="+")
    parser.add_argument("--weight", type=float, default=0.25)
    parser.add_argument("--control-of", action="append", default=[], metavar="ARM=OTHER",
                        help="ARM's control is OTHER's (an encoder with `control_of` in its "
                             "study), e.g. pool60x_lr1e-3-full=pool60_lr1e-3-full")
    parser.add_argument("--report-only", action="store_true",
                        help="compute nothing: the tables from OUT/blend.csv")
    args = parser.parse_args()
    control_of = dict(item.split("=", 1) for item in args.control_of)
    if args.report_only:
        report(pd.read_csv(Path(args.out) / "blend.csv"), args.weight, control_of)
        return
    data = load_labeled(args.data, "u0_atom", "kcal/mol")
    numbers = [a.numbers for a in data.atoms]
    row_of = {m: i for i, m in enumerate(data.mol_ids)}
    start = time.time()
    table = B.AtomTable.build(B.fchl19(numbers, [a.positions for a in data.atoms]), numbers)
    kernel = B.local_kernels(table, table, SIGMAS)
    print(f"FCHL19 kernel over {len(data)} molecules: {time.time() - start:.0f} s", flush=True)
    rows = []
    for study in map(Path, args.studies):
        stores = [str(p) for p in study.glob("cheap-*.db")]
        cheap = cheap_labels(data, stores)
        for arm, budget, seed, child in children(study):
            split = pd.read_csv(child / "split.csv")
            fit = np.array([row_of[m] for m in split.mol_id[split.part != "test"]])
            test = np.array([row_of[m] for m in split.mol_id[split.part == "test"]])
            _, payload = load_checkpoint(child / "model.ckpt")
            delta = Delta.from_meta(payload["meta"]["delta"])
            base = np.array([delta.baseline(numbers[i], cheap.energies[i])
                             for i in range(len(data))])
            nn = teacher_labels(child, data, test, "energy", stores)
            krr = krr_predictions(kernel, numbers, data.energy - base, fit, test) + base[test]
            truth = data.energy[test]
            ok = np.isfinite(nn) & np.isfinite(krr)
            mae = {name: float(np.abs(p[ok] - truth[ok]).mean() / KCAL_PER_MOL_TO_EV)
                   for name, p in [("child", nn), ("krr", krr),
                                   ("blend", (1 - args.weight) * nn + args.weight * krr)]}
            rows.append({"study": study.name, "arm": arm, "N": budget, "seed": seed,
                         "n_test": int(ok.sum()), **mae})
            print(f"{arm} N={budget} s{seed}: child {mae['child']:.3f}  krr {mae['krr']:.3f}  "
                  f"blend {mae['blend']:.3f}", flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    frame.to_csv(Path(args.out) / "blend.csv", index=False)
    report(frame, args.weight, control_of)


def _cell(values) -> str:
    ci = bootstrap_ci(list(values))
    return f"{ci.mean:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def report(frame: pd.DataFrame, weight: float, control_of: dict[str, str] | None = None) -> None:
    """The tables; ``control_of``: ``{arm: other arm}`` whose control is ``arm``'s."""
    control_of = control_of or {}
    print(f"\n| arm | N | seeds | child | KRR | blend (w = {weight:g}) |\n|---|---|---|---|---|---|")
    for (arm, budget), part in frame.groupby(["arm", "N"]):
        print(f"| {arm} | {budget} | {len(part)} | {_cell(part.child)} | {_cell(part.krr)} | "
              f"{_cell(part.blend)} |")
    print("\n| arm | N | blend vs scratch blend | blend vs control blend |\n|---|---|---|---|")
    for (arm, budget), part in frame.groupby(["arm", "N"]):
        if arm == "scratch" or "-control-" in arm:
            continue
        mine = dict(zip(part.seed, part.blend, strict=True))
        cells = []
        for ref in ["scratch", control_of.get(arm, arm).replace("-full", "-control-full")]:
            other = frame[(frame.arm == ref) & (frame.N == budget)]
            diff = paired_difference(mine, dict(zip(other.seed, other.blend, strict=True)))
            cells.append("" if diff is None else
                         f"{diff.interval.mean:+.2f} [{diff.interval.low:+.2f}, {diff.interval.high:+.2f}]")
        print(f"| {arm} | {budget} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
