"""Benchmark `molpre conformers`: throughput vs a plain RDKit loop, worker scaling, peak RSS.

    python bench/conformers.py                      # 2,000 MOSES molecules, n=2, RSS at 10k/100k
    python bench/conformers.py --molecules 200 --rss-rows 1000,10000   # a quick look

Throughput: the first ``--molecules`` SMILES of ../shared/data/moses_train.csv.gz through
(a) a plain RDKit loop doing the same work as molpre's conformer step (parse, AddHs, ETKDGv3
with the same seed/pruning/timeout, MMFF94 optimization; nothing written), and (b) the
``molpre conformers`` CLI in a subprocess with 1 and 2 workers (reading, standardization,
InChIKeys, extxyz + errors writing included). molpre's mol/s uses the seconds the CLI reports
(the interpreter start is shown separately as end-to-end seconds). Both sides accept Br here
(``--elements`` widened) so they embed the same molecules. CPU seconds are shown too: on a
loaded machine they compare the two single-process runs more fairly than wall time. The 1-minute load average
is printed beside each run: on a shared machine, worker scaling is only meaningful when the
load is below the core count.

Peak RSS: the CLI runs in a child process at two input sizes; reported are the peak RSS of
that process (it reads, streams and writes) and the peak of the summed RSS of it and its
descendants (forkserver, workers), both sampled every 0.1 s with psutil. (``ru_maxrss`` of
the child is not used: Linux carries the parent's high-water mark across fork+exec.) Embedding 100k MOSES molecules would take
~1.5 h on two cores, so the RSS runs use cheaper rows, stated in the table:
``moses-rejected``: real MOSES rows, fully parsed and standardized, then rejected by
``--max-heavy-atoms 12`` (reader + standardizer + stream + errors file);
``tiny-embedded``: unique-id rows of water and hydroxide, each standardized, embedded,
MMFF-optimized and written as an extxyz frame (the full frame path), in-process (1 worker: at
~1 ms per row the pool's per-task overhead would dominate; the pool's bounded read-ahead is
covered by tests/unit/chem/test_chem_stream.py).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOSES = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
             ROOT.parent / "shared" / "data") / "moses_train.csv.gz"  # worktrees nest deeper
TINY = ("O", "[OH-]")
RSS_PROBE = (
    "import resource, sys\n"
    "from molpre.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    use = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print(f'CPU_S {use.ru_utime + use.ru_stime}')\n"
)


def moses_smiles(count: int, path: Path = MOSES) -> list[str]:
    """The first ``count`` SMILES of the MOSES training split (read lazily)."""
    with gzip.open(path, "rt") as handle:
        next(handle)
        return [line.strip() for line in itertools.islice(handle, count)]


def write_csv(path: Path, rows) -> Path:
    with open(path, "w") as handle:
        handle.write("id,smiles\n")
        for mol_id, smiles in rows:
            handle.write(f"{mol_id},{smiles}\n")
    return path


def plain_rdkit_loop(smiles: list[str], n: int, seed: int) -> tuple[int, float, float]:
    """The reference: the same embedding + MMFF94 settings, nothing else.

    Returns (conformers, wall seconds, CPU seconds).
    """
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    from molpre.chem.conformers import ConformerConfig, rdkit_seed

    config, total = ConformerConfig(), 0
    start, cpu_start = time.perf_counter(), time.process_time()
    with rdBase.BlockLogs():
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            if mol is None:
                continue
            mol = Chem.AddHs(mol)
            params = rdDistGeom.ETKDGv3()
            params.randomSeed, params.pruneRmsThresh = rdkit_seed(seed), config.prune_rms
            params.timeout, params.numThreads = config.timeout_s, 1
            ids = rdDistGeom.EmbedMultipleConfs(mol, n, params)
            if len(ids):
                rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(
                    mol, numThreads=1, maxIters=config.max_ff_iters, mmffVariant="MMFF94")
            total += len(ids)
    return total, time.perf_counter() - start, time.process_time() - cpu_start


def _rss_mib(proc) -> tuple[float, float]:
    """RSS (MiB) of a process, and summed over it and its descendants (psutil); 0 if gone."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for member in members:
        try:
            sizes.append(member.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            sizes.append(0.0)
    return sizes[0], sum(sizes)


def run_cli(args: list[str]) -> tuple[dict, float]:
    """Run the CLI under the RSS probe, sampling its process tree's RSS every 0.1 s.

    Returns the summary numbers (plus main-process peak RSS and peak tree RSS, MiB) and the
    end-to-end seconds.
    """
    start, main_peak, tree_peak = time.perf_counter(), 0.0, 0.0
    with subprocess.Popen([sys.executable, "-c", RSS_PROBE, "conformers", *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        while proc.poll() is None:
            main_now, tree_now = _rss_mib(proc)
            main_peak, tree_peak = max(main_peak, main_now), max(tree_peak, tree_now)
            time.sleep(0.1)
        stdout = proc.stdout.read()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"molpre conformers {' '.join(args)} failed (rc {proc.returncode})")
    lines = stdout.splitlines()
    parts = next(line for line in lines if line.startswith("ok ")).replace(",", "").split()
    cpu = float(next(line for line in lines if line.startswith("CPU_S")).split()[1])
    return {"ok": int(parts[1]), "failed": int(parts[3]), "conformers": int(parts[5]),
            "seconds": float(parts[6]), "rss_mib": main_peak, "cpu_s": cpu,
            "tree_mib": tree_peak}, wall


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def throughput(tmp: Path, count: int, n: int, seed: int) -> None:
    smiles = moses_smiles(count)
    src = write_csv(tmp / "moses.csv", ((f"moses-{i}", s) for i, s in enumerate(smiles, 1)))
    confs, plain_s, plain_cpu = plain_rdkit_loop(smiles, n, seed)
    plain_rate = count / plain_s
    print(f"\nThroughput: {count} MOSES molecules, n={n}, seed={seed}, elements incl. Br")
    print(f"{'run':<21}{'ok':>6}{'confs':>7}{'wall s':>8}{'e2e s':>7}{'CPU s':>7}{'mol/s':>7}"
          f"{'ratio (wall)':>18}{'ratio (CPU)':>13}{'load':>6}")
    print(f"{'plain RDKit loop':<21}{count:>6}{confs:>7}{plain_s:>8.1f}{'-':>7}{plain_cpu:>7.1f}"
          f"{plain_rate:>7.2f}{'1.00x plain':>18}{'1.00x':>13}{_load():>6}")
    rates = {}
    for workers in (1, 2):
        res, wall = run_cli([str(src), "-o", str(tmp / f"w{workers}.extxyz"), "--n", str(n),
                             "--seed", str(seed), "--workers", str(workers),
                             "--elements", "H,C,N,O,F,S,Cl,Br"])
        rates[workers] = count / res["seconds"]
        ratio = (f"{rates[1] / plain_rate:.2f}x plain" if workers == 1
                 else f"{rates[2] / rates[1]:.2f}x 1 worker")
        cpu = f"{res['cpu_s']:.1f}" if workers == 1 else "-"
        cpu_ratio = f"{plain_cpu / res['cpu_s']:.2f}x" if workers == 1 else "-"
        print(f"{f'molpre, {workers} worker(s)':<21}{res['ok']:>6}{res['conformers']:>7}"
              f"{res['seconds']:>8.1f}{wall:>7.1f}{cpu:>7}{rates[workers]:>7.2f}{ratio:>18}"
              f"{cpu_ratio:>13}{_load():>6}")
    print("targets: 1 worker >= 0.90x plain; 2 workers >= 1.70x 1 worker. CPU s of molpre "
          "includes interpreter start-up and imports; with 2 workers the work runs in the pool.")


def rss_inputs(tmp: Path, kind: str, rows: int) -> tuple[Path, list[str]]:
    if kind == "moses-rejected":
        src = write_csv(tmp / f"rss-{kind}-{rows}.csv",
                        ((f"moses-{i}", s) for i, s in enumerate(moses_smiles(rows), 1)))
        return src, ["--max-heavy-atoms", "12", "--workers", "1"]
    tiny = ((f"tiny-{i}", TINY[i % len(TINY)]) for i in range(1, rows + 1))
    return write_csv(tmp / f"rss-{kind}-{rows}.csv", tiny), ["--n", "1", "--workers", "1"]


def peak_rss(tmp: Path, sizes: list[int], kinds: list[str]) -> None:
    print(f"\nPeak RSS of the streaming CLI ({', '.join(kinds)})")
    print(f"{'input':<16}{'rows':>8}{'ok':>8}{'failed':>8}{'seconds':>9}{'main MiB':>10}"
          f"{'tree MiB':>10}{'main vs first':>15}{'tree vs first':>15}")
    for kind in kinds:
        first = None
        for rows in sizes:
            src, extra = rss_inputs(tmp, kind, rows)
            res, _ = run_cli([str(src), "-o", str(tmp / "rss.extxyz"), *extra])
            first = first or res
            print(f"{kind:<16}{rows:>8}{res['ok']:>8}{res['failed']:>8}{res['seconds']:>9.1f}"
                  f"{res['rss_mib']:>10.1f}{res['tree_mib']:>10.1f}"
                  f"{res['rss_mib'] / first['rss_mib']:>14.2f}x"
                  f"{res['tree_mib'] / max(first['tree_mib'], 1e-9):>14.2f}x")
    print("target: RSS at the largest size within 1.3x of the smallest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--n", type=int, default=2, help="conformers per molecule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-rows", default="10000,100000")
    parser.add_argument("--rss-kinds", default="moses-rejected,tiny-embedded")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    if not MOSES.is_file():
        raise SystemExit(f"reference data not found: {MOSES}")
    with tempfile.TemporaryDirectory(prefix="molpre-bench-") as tmp:
        if not args.skip_throughput:
            throughput(Path(tmp), args.molecules, args.n, args.seed)
        if not args.skip_rss:
            peak_rss(Path(tmp), [int(s) for s in args.rss_rows.split(",")],
                     args.rss_kinds.split(","))


if __name__ == "__main__":
    main()
