"""How well a pretraining run's cheap-level heads reproduce GFN2-xTB on chosen shards:

    python bench/results/qm9_xtb/pool/head_on_shards.py CORPUS SHARD_FILE [--first] RUN_DIR...

CORPUS is the run's shard directory (its manifest's per-element offsets are the ones the heads
learned against); SHARD_FILE one of its shards; ``--first`` scores only conformer 0 of each
molecule (for an extxyz corpus: the given geometry, e.g. QM9's B3LYP one). RUN_DIR is a
`molpre pretrain` OUTDIR (its last.ckpt is read with weights_only=True). Prints, per run, the
energy MAE (meV/atom, after the per-element fit) and the force MAE (meV/A per component):
the same metrics as the run's validation, on other geometries.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from molpre.data import keys
from molpre.data.shard_stream import ShardDataset, collate_views
from molpre.data.shards import iter_shard
from molpre.train.pretrain_module import PretrainModule


def module_of(run_dir: Path) -> PretrainModule:
    state = torch.load(run_dir / "last.ckpt", weights_only=True, map_location="cpu")
    hp = state["hyper_parameters"]
    module = PretrainModule(hp["encoder_config"], hp["objectives"])
    module.load_state_dict(state["state_dict"])
    return module.eval()


def batches(corpus: Path, shard: str, cutoff: float, first: bool, size: int = 64):
    dataset = ShardDataset(corpus, cutoff, files=[shard])
    items = []
    for mol in iter_shard(corpus / shard):
        picks = [0] if first else range(len(mol.conformers))
        for c in picks:
            one = dataclasses.replace(mol, conformers=mol.conformers[c:c + 1],
                               energies=mol.energies[c:c + 1],
                               forces=None if mol.forces is None else mol.forces[c:c + 1])
            items.append(dataset.samples(one, np.random.default_rng(0)))
            if len(items) == size:
                yield collate_views(items)
                items = []
    if items:
        yield collate_views(items)


def score(module: PretrainModule, corpus: Path, shard: str, first: bool) -> dict[str, float]:
    sums: dict[str, float] = {}
    graphs = 0
    for batch in batches(corpus, shard, module.encoder.config.cutoff, first):
        n = int(batch[keys.NUM_GRAPHS])
        terms = module.losses(batch)
        for name in ("cheap_energy_mae_mev_per_atom", "cheap_forces_mae_mev_per_a"):
            if name in terms:
                sums[name] = sums.get(name, 0.0) + float(terms[name].detach()) * n
        graphs += n
    return {name: value / graphs for name, value in sums.items()} | {"geometries": graphs}


def main(argv: list[str]) -> None:
    first = "--first" in argv
    args = [a for a in argv if a != "--first"]
    corpus, shard, runs = Path(args[0]), args[1], [Path(a) for a in args[2:]]
    torch.set_num_threads(1)
    for run in runs:
        result = score(module_of(run), corpus, shard, first)
        print(f"{run}: {shard}{' conformer 0' if first else ''}: "
              + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
