"""``molpre demo``: the whole flow on the embedded corpus, small enough for a laptop.

1. intake: the first ``molecules`` SMILES of RDKit's NCI sample are standardized; the
   ``label_molecules`` smallest valid ones (at most ``max_label_atoms`` atoms) become the
   labeled set, the rest the unlabeled pretraining corpus (so no labeled molecule is
   pretrained on);
2. conformers for the labeled set (ETKDGv3 + MMFF94), written as extxyz;
3. PySCF energies and forces (HF/STO-3G by default) into an ASE database (finetuning
   then fits both: forces are on whenever every label has them);
4. self-supervised pretraining (masked atoms, conformer contrast, denoising);
5. finetuning from scratch and from the pretrained encoder on the same split;
6. predictions with :class:`molpre.Predictor` from the finetuned model.

Everything is tracked in an MLflow SQLite store inside the output folder. Uses only the
public API of the stages, so it doubles as an end-to-end example.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from molpre.config import from_dict, setting

EXAMPLE_SMILES = ("CCO", "c1ccccc1O", "CC(=O)N", "C[Si](C)(C)C", "not-a-smiles")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and levels of the demo; the defaults run in a few minutes on 2 CPU cores."""

    out: str = setting("molpre-demo", flags=("-o", "--output"), help="Output folder.",
                       click_type=click.Path(file_okay=False))
    seed: int = setting(0, help="The one seed for every stage.")
    molecules: int = setting(600, click_type=click.IntRange(min=10),
                             help="NCI molecules to read.")
    label_molecules: int = setting(60, click_type=click.IntRange(min=8),
                                   help="Smallest molecules to label with PySCF.")
    max_label_atoms: int = 20
    method: str = "HF"
    basis: str = "sto-3g"
    workers: int = setting(2, click_type=click.IntRange(min=1),
                           help="Worker processes for conformers and labels.")
    pretrain_conformers: int = 2
    pretrain_steps: int = setting(300, click_type=click.IntRange(min=1), help="Pretraining steps.")
    finetune_epochs: int = setting(60, click_type=click.IntRange(min=1),
                                   help="Finetuning epochs per arm.")
    test_fraction: float = 0.25
    preset: str = "small"
    examples: tuple[str, ...] = field(default=EXAMPLE_SMILES)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(Path(self.out) / 'mlflow.db').resolve()}"


@dataclass
class DemoResult:
    """Paths and headline numbers of a demo run."""

    out: Path
    counts: dict[str, int]
    test_mae_mev: dict[str, float]
    predictions: Any  # pandas DataFrame
    run_ids: dict[str, str]


def split_corpus(records: Iterable, n_label: int, max_atoms: int) -> tuple[list, list, list]:
    """(labeled, unlabeled, rejected): the smallest valid records are labeled, in input order."""
    ok, rejected = [], []
    for record in records:
        (ok if record.ok else rejected).append(record)
    sizes = {id(r): r.mol.GetNumAtoms(onlyExplicit=False) for r in ok}  # H included
    small = [r for r in ok if sizes[id(r)] <= max_atoms]
    chosen = {id(r) for r in sorted(small, key=lambda r: (sizes[id(r)], r.row))[:n_label]}
    labeled = [r for r in ok if id(r) in chosen]
    unlabeled = [r for r in ok if id(r) not in chosen]
    return labeled, unlabeled, rejected


def write_smiles(records: Iterable, path: Path) -> Path:
    """Write ``smiles id`` lines (the .smi format molpre reads)."""
    with open(path, "w") as handle:
        for record in records:
            handle.write(f"{record.smiles} {record.mol_id}\n")
    return path


def make_conformers(records: list, path: Path, seed: int, workers: int) -> tuple[int, int]:
    """One conformer per labeled molecule -> extxyz; returns (ok, failed)."""
    from molpre.chem import ConformerWriter, conformer_stream

    with ConformerWriter(path) as writer:
        for outcome in conformer_stream(records, n=1, seed=seed, workers=workers):
            writer.write(outcome)
    return writer.ok, writer.failed


def run_demo(config: DemoConfig, echo: Callable[[str], None] = print) -> DemoResult:
    """Run every stage in order; ``echo`` receives one progress line per stage."""
    import os

    import ase.io

    from molpre.chem import default_corpus, records_from_smiles
    from molpre.qc import LevelOfTheory, label_conformers
    from molpre.runtime import seed_everything

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = config.tracking_uri
    seed_everything(config.seed)

    corpus = itertools.islice(default_corpus(), config.molecules)
    labeled, unlabeled, rejected = split_corpus(
        records_from_smiles(corpus), config.label_molecules, config.max_label_atoms)
    pretrain_smi = write_smiles(unlabeled, out / "pretrain_corpus.smi")
    echo(f"[1/6] intake: {config.molecules} NCI molecules -> {len(labeled)} to label, "
         f"{len(unlabeled)} to pretrain on, {len(rejected)} rejected (unsupported elements, ...)")

    conf_path = out / "label_conformers.extxyz"
    ok, failed = make_conformers(labeled, conf_path, config.seed, config.workers)
    echo(f"[2/6] conformers: {ok} molecules embedded, {failed} failed -> {conf_path}")

    level = LevelOfTheory(method=config.method, basis=config.basis)
    frames = ase.io.read(conf_path, index=":") if ok else []
    labels = out / "labels.db"
    summary = label_conformers(frames, labels, level, forces=True, workers=config.workers)
    echo(f"[3/6] labels {config.method}/{config.basis}: {summary.line()} -> {labels}")

    pre = pretrain_stage(config, pretrain_smi, out)
    echo(f"[4/6] pretraining: {pre.global_step} steps -> {pre.encoder_path} (run {pre.run_id})")

    results = {mode: finetune_stage(config, labels, mode, pre.encoder_path, out)
               for mode in ("scratch", "full")}
    mae = {m: r.metrics["test_mae_mev"] for m, r in results.items()}
    echo(f"[5/6] finetuning on {results['scratch'].split_sizes.get('train', '?')} labels: test MAE "
         f"scratch {mae['scratch']:.1f} meV, pretrained {mae['full']:.1f} meV "
         f"(atomref only {results['scratch'].metrics.get('baseline_test_mae_mev', float('nan')):.1f} meV)")

    predictions = predict_stage(results["full"].out, config.examples)
    predictions.to_csv(out / "predictions.csv", index=False)
    echo(f"[6/6] predictions -> {out / 'predictions.csv'}\n" + predictions.to_string(index=False))

    run_ids = {"pretrain": pre.run_id, **{f"finetune-{m}": r.run_id for m, r in results.items()}}
    counts = {"labeled": len(labeled), "pretrain_molecules": len(unlabeled),
              "rejected": len(rejected), "labels_ok": summary.ok, "labels_failed": summary.failed}
    return DemoResult(out, counts, mae, predictions, run_ids)


def pretrain_stage(config: DemoConfig, corpus: Path, out: Path):
    """A short pretraining with all three objectives on the unlabeled corpus."""
    from molpre.train.pretrain import pretrain

    return pretrain({
        "seed": config.seed, "output": str(out / "pretrain"),
        "corpus": {"path": str(corpus), "max_molecules": None,
                   "conformers": config.pretrain_conformers, "workers": config.workers},
        "model": {"preset": config.preset},
        "train": {"max_steps": config.pretrain_steps, "epochs": 1000, "progress": False},
        "tracking": {"experiment": "molpre-demo", "run_name": "demo-pretrain"},
    })


def finetune_stage(config: DemoConfig, labels: Path, mode: str, encoder: Path, out: Path):
    """Finetune on the PySCF labels, from scratch or from the pretrained encoder."""
    from molpre.train.config import FinetuneConfig
    from molpre.train.finetune import finetune

    return finetune(FinetuneConfig(
        data=str(labels), target="energy", unit="eV", mode=mode,
        encoder=None if mode == "scratch" else str(encoder), preset=config.preset,
        epochs=config.finetune_epochs, test_fraction=config.test_fraction, seed=config.seed,
        split_seed=config.seed, out=str(out / f"finetune-{mode}"), experiment="molpre-demo",
        run_name=f"demo-finetune-{mode}", progress=False,
    ))


def predict_stage(model_dir: Path, smiles: Iterable[str]):
    """Predict energies for ``smiles`` with the finetuned model (errors become rows)."""
    from molpre.predict import Predictor

    return Predictor.load(model_dir).predict(list(smiles))


#: DemoConfig fields that ``molpre demo`` offers as options (help in the fields).
CLI_FIELDS = ("out", "molecules", "label_molecules", "pretrain_steps", "finetune_epochs",
              "workers", "seed")


def config_from_dict(data: dict[str, Any]) -> DemoConfig:
    """DemoConfig from a dict (e.g. pipelines/demo.yaml's ``demo:`` section): unknown keys
    and wrong types are ConfigErrors naming the key."""
    return from_dict(DemoConfig, data)
