"""``molpre audit``: is the pretraining corpus (or a probe set) contaminated by test molecules?"""

from __future__ import annotations

import json

import click

#: ``--corpus default``: molpre's own default pretraining corpus.
DEFAULT_CORPUS = "default"


def resolve_corpus(corpus: str) -> str:
    """``default`` -> the file of RDKit's NCI sample (what ``molpre pretrain`` uses without
    ``--corpus``); other values are paths that must exist."""
    from pathlib import Path

    if corpus == DEFAULT_CORPUS and not Path(corpus).exists():
        from molpre.chem import corpus_path

        return str(corpus_path())
    if not Path(corpus).exists():
        raise click.BadParameter(f"{corpus}: no such file or folder (or give `default`, "
                                 "molpre's default pretraining corpus)", param_hint="--corpus")
    return corpus


def eval_test_frames(frames: list, first: int, seed: int) -> list:
    """The test split as every study and finetune draws it: the first ``first`` of
    ``default_rng(seed).permutation(n)``, grown to whole molecule groups (InChIKey, else
    mol_id), so a molecule's other rows are audited too."""
    from molpre.data.datasets import frame_groups
    from molpre.data.splits import permutation_test_rows, whole_groups

    rows = whole_groups(permutation_test_rows(len(frames), first, seed), frame_groups(frames))
    return [frames[i] for i in rows]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus", required=True,
              help="Pretraining corpus: a shard directory (molecules.csv), a molecule file "
                   "(SMILES/CSV/SDF/XYZ), or `default` (molpre's default corpus, RDKit's NCI "
                   "sample).")
@click.option("--eval", "eval_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Evaluation data: extxyz(.gz) or ASE .db label file (frames with smiles/inchikey info, else bonds from geometry).")
@click.option("--eval-first", type=click.IntRange(min=1),
              help="Audit only the test split: the first N of default_rng(--split-seed).permutation(n_frames), with every other row of those molecules.")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--smiles-col", help="SMILES column of a CSV corpus.")
@click.option("--drop", "drop_out", type=click.Path(),
              help="Write the corpus without the overlapping molecules to this CSV (smiles,mol_id,...).")
@click.option("--drop-level", type=click.Choice(["inchikey", "block", "scaffold"]), default="block",
              show_default=True, help="Which overlap --drop removes.")
@click.option("--probe", is_flag=True,
              help="Treat --corpus as a pretraining probe set: fail (exit 1) if any molecule is in the evaluation set.")
@click.option("--probe-limit", type=click.IntRange(min=1), default=500, show_default=True,
              help="With --probe: the probe reads this many first frames (pretrain's probe.max_molecules).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def command(corpus, eval_path, eval_first, split_seed, smiles_col, drop_out, drop_level, probe,
            probe_limit, as_json) -> None:
    """Overlap of a corpus with evaluation molecules by full InChIKey, InChIKey
    connectivity block (first 14 characters) and Bemis-Murcko scaffold, with counts and
    fractions. Example (the QM9 protocol's test set against a pretraining run's corpus):

      molpre audit --corpus runs/pretrain/shards --eval ../shared/data/qm9_sample3000.extxyz.gz --eval-first 1000

    `--corpus default` audits molpre's default pretraining corpus (RDKit's NCI sample).
    """
    from molpre.data.datasets import read_frames
    from molpre.outputs import guard
    from molpre.study import contamination as cont

    corpus = resolve_corpus(corpus)
    guard([drop_out], [corpus, eval_path])
    frames = read_frames(eval_path)
    if eval_first:
        frames = eval_test_frames(frames, eval_first, split_seed)
    evaluation = cont.eval_keys(frames)
    if probe:
        if corpus.endswith((".csv", ".smi", ".csv.gz", ".smi.gz")):
            keys = cont.corpus_keys(corpus, smiles_col)[:probe_limit]
        else:
            keys = cont.eval_keys(read_frames(corpus)[:probe_limit])
        cont.check_probe_set(keys, evaluation)
        click.echo(f"probe set {corpus}: {len(keys)} molecules, none in the evaluation set")
        return
    keys = cont.corpus_keys(corpus, smiles_col)
    result = cont.audit(keys, evaluation, corpus, eval_path)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=1))
    else:
        click.echo(f"corpus {corpus}: {result.n_corpus} molecules; evaluation {eval_path}: "
                   f"{result.n_eval} molecules ({result.unknown} without keys)")
        click.echo(result.table())
    if drop_out:
        kept, dropped = cont.clean_corpus(keys, evaluation, drop_level)
        cont.write_corpus_csv(kept, drop_out)
        click.echo(f"wrote {len(kept)} molecules to {drop_out} ({len(dropped)} dropped by {drop_level})")
