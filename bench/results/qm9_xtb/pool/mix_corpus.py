"""One shard directory from two labeled corpora, by symlinks, for resuming a pretraining run:

    python bench/results/qm9_xtb/pool/mix_corpus.py BASE_CORPUS EXTRA_CORPUS OUT [PREFIX]

OUT holds BASE's shards but its last (BASE's held-out shard, which `molpre pretrain
--set corpus.val_shards=1` keeps held out), then EXTRA's shards (as ``PREFIX-NNNNN.npz``,
PREFIX ``pool`` by default; BASE may itself be a mix, given a new PREFIX), then
BASE's last shard. The manifest is BASE's, with the counts and shard list updated: BASE's
per-element offsets and first shard (whence the cheap objectives' loss scales) stay, so a run
resumed on OUT learns the same quantities. ``molecules.csv`` lists both corpora's molecules
(for `molpre audit` and a study's audit). EXTRA must be labeled at BASE's level.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(base: Path, extra: Path, out: Path, prefix: str = "pool") -> None:
    base_m = json.loads((base / "manifest.json").read_text())
    extra_m = json.loads((extra / "manifest.json").read_text())
    if (base_m["labels"]["level"], base_m["labels"]["forces"]) != \
            (extra_m["labels"]["level"], extra_m["labels"]["forces"]):
        raise SystemExit("the two corpora are labeled differently")
    out.mkdir(parents=True)
    shards = []
    for shard in base_m["shards"][:-1]:
        os.symlink(base.resolve() / shard["file"], out / shard["file"])
        shards.append(shard)
    for i, shard in enumerate(extra_m["shards"]):
        name = f"{prefix}-{i:05d}.npz"
        if any(s["file"] == name for s in base_m["shards"]):
            raise SystemExit(f"{name} is already a shard of {base}: give another PREFIX")
        os.symlink(extra.resolve() / shard["file"], out / name)
        shards.append(dict(shard, file=name))
    held = base_m["shards"][-1]
    os.symlink(base.resolve() / held["file"], out / held["file"])
    shards.append(held)
    manifest = dict(base_m, shards=shards,
                    molecules=sum(s["molecules"] for s in shards),
                    conformers=sum(s["conformers"] for s in shards),
                    sources=[f"{base.resolve()} (offsets; shards 0..-2 train, the last held out)",
                             f"{extra.resolve()}"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    base_rows = (base / "molecules.csv").read_text().splitlines()
    extra_rows = (extra / "molecules.csv").read_text().splitlines()[1:]
    extra_rows = [",".join(row.split(",")[:-1] + [prefix]) for row in extra_rows]
    (out / "molecules.csv").write_text("\n".join(base_rows + extra_rows) + "\n")
    print(f"{manifest['molecules']} molecules, {manifest['conformers']} geometries -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:5])
