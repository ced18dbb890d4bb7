"""``molpre demo``: does pretraining save labels? The whole question, small, on the embedded corpus.

1. intake: RDKit's NCI sample (4,999 SMILES) is standardized; the ``label_molecules``
   smallest valid ones made of ``label_elements`` (at most ``max_label_atoms`` atoms) become
   the labeled set and the first ``molecules`` of the others the pretraining corpus (so no
   labeled molecule is pretrained on);
2. the expensive labels: one ETKDGv3 + MMFF94 conformer per labeled molecule, PySCF energies
   (and forces with ``forces``) at ``method``/``basis`` (HF/STO-3G by default) in an ASE
   database;
3. the free labels: the corpus's conformers and a displaced copy of each, labeled at
   ``cheap_level`` (GFN2-xTB: milliseconds a geometry) into pretraining shards;
4. pretraining on those cheap energies and forces (the recipe that paid on QM9; see
   docs/results.md), the encoder keeping its energy head;
5. a study (:mod:`molpre.study`): ``scratch``, ``pretrained:full`` (starting from the
   pretrained energy head) and its random-init control ``pretrained:control-full``, beside
   the per-element ``linear`` fit, over ``budgets`` x ``seeds`` on one fixed test split;
6. the answer: the table with intervals, the verdicts and label savings; the best arm's
   model at the largest budget registered as ``models:/molpre-demo@champion`` and used by
   :class:`molpre.Predictor` on a few SMILES (two fail on purpose).

A rerun with the same OUT reuses everything it can: the conformers, the labels (the store
skips conformers it holds), the corpus and the pretrained encoder (same settings) and the
study's finished children. Everything is tracked in an MLflow SQLite store inside OUT
(artifacts in OUT/mlartifacts). Uses only the public API of the stages, so it doubles as an
end-to-end example.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from molpre.config import ConfigError, from_dict, setting, to_dict
from molpre.demo_answer import answer, register_best

EXAMPLE_SMILES = ("CCO", "c1ccccc1O", "CC(=O)N", "C[Si](C)(C)C", "not-a-smiles")
EXPERIMENT = "molpre-demo"
ENCODER = "pretrained"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and levels of the demo; the defaults run in a few minutes on 2 CPU cores."""

    out: str = setting("molpre-demo", flags=("-o", "--output"), help="Output folder.",
                       click_type=click.Path())
    seed: int = setting(0, help="The seed of intake, conformers, pretraining and the test split.")
    molecules: int = setting(500, click_type=click.IntRange(min=10),
                             help="Molecules of the free-label pretraining corpus (NCI "
                                  "molecules other than the labeled ones).")
    label_molecules: int = setting(150, click_type=click.IntRange(min=8),
                                   help="Smallest molecules to label with PySCF.")
    max_label_atoms: int = 20
    # QM9's elements less F: only ~6% of the small NCI molecules have F, so at 50 labels its
    # per-element reference energy rests on two or three molecules (docs/demo.md)
    label_elements: tuple[str, ...] = ("H", "C", "N", "O")
    method: str = "HF"
    basis: str = "sto-3g"
    forces: bool = setting(False, help="Also compute the expensive level's forces (2-3x the "
                                       "label time; the study's children then fit them too).")
    workers: int = setting(2, click_type=click.IntRange(min=1),
                           help="Worker processes for conformers, labels and study children.")
    cheap_level: str = setting("gfn2-xtb", help="The free level the corpus is labeled at "
                                                "(gfn2-xtb, gfn1-xtb, mmff94, hf/sto-3g).")
    delta: str | None = setting(
        "gfn2-xtb", help="Cheap level the study learns on top of (every arm, baselines "
                         "included, learns the target minus s x its energy; predictions "
                         "compute it too); 'none' for the plain target.")
    pretrain_conformers: int = 2
    pretrain_steps: int = setting(300, click_type=click.IntRange(min=1), help="Pretraining steps.")
    test_size: int = 40
    budgets: tuple[int, ...] = (50, 100)
    seeds: int = setting(3, click_type=click.IntRange(min=2), help="Seeds per budget and arm.")
    finetune_epochs: int = setting(100, click_type=click.IntRange(min=1),
                                   help="Most finetuning epochs per study child.")
    patience: int = 20
    batch_size: int = 4  # small batches: 20-100 labels still give each child ~500+ steps
    val_min: int = 5
    preset: str = "small"
    examples: tuple[str, ...] = field(default=EXAMPLE_SMILES)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(Path(self.out) / 'mlflow.db').resolve()}"


@dataclass
class DemoResult:
    """Paths, counts and the study of a demo run."""

    out: Path
    counts: dict[str, int]
    study: Any  # molpre.study.runner.StudyResult
    predictions: Any  # pandas DataFrame
    run_ids: dict[str, str]
    reused: dict[str, bool] = field(default_factory=dict)


def fingerprint(payload: Any) -> str:
    """SHA-256 (hex, 16 chars) of a JSON-able payload: the identity of a cached stage."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(record: Path, key: str) -> bool:
    """Whether ``record`` (JSON) says its stage finished with fingerprint ``key``."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return data.get("key") == key and data.get("done") is True


def mark(record: Path, key: str, done: bool, **extra: Any) -> None:
    """Write a stage record (JSON)."""
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"key": key, "done": done, **extra}))


def split_corpus(records: Iterable, n_label: int, max_atoms: int,
                 elements: Iterable[str] | None = None) -> tuple[list, list, list]:
    """(labeled, unlabeled, rejected): the smallest valid records made of ``elements`` only
    (None: any) are labeled, in input order; every other valid record is the corpus."""
    ok, rejected = [], []
    for record in records:
        (ok if record.ok else rejected).append(record)
    allowed = None if elements is None else set(elements)
    sizes = {id(r): r.mol.GetNumAtoms(onlyExplicit=False) for r in ok}  # H included
    small = [r for r in ok if sizes[id(r)] <= max_atoms and
             (allowed is None or {a.GetSymbol() for a in r.mol.GetAtoms()} <= allowed)]
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


def make_conformers(records: list, path: Path, seed: int, workers: int) -> tuple[int, int, bool]:
    """One conformer per labeled molecule -> extxyz; (ok, failed, reused). Reused when
    ``path`` was written for the same molecules and seed (record ``path``.json)."""
    from molpre.chem import ConformerWriter, conformer_stream

    record = path.with_suffix(".json")
    key = fingerprint({"molecules": [(r.mol_id, r.smiles) for r in records], "seed": seed})
    if path.is_file() and cached(record, key):
        counts = json.loads(record.read_text())
        return counts["ok"], counts["failed"], True
    with ConformerWriter(path) as writer:
        for outcome in conformer_stream(records, n=1, seed=seed, workers=workers):
            writer.write(outcome)
    mark(record, key, True, ok=writer.ok, failed=writer.failed)
    return writer.ok, writer.failed, False


def labeled_set(store: Path, frames: list, level, path: Path) -> int:
    """Write the store's ok rows for exactly ``frames`` (by content key) to extxyz ``path``:
    the study's data, so rows left in the store by other settings stay out. Returns rows."""
    import ase.io

    from molpre.data.store import read_labels
    from molpre.qc.content_keys import content_key

    keys = {content_key(atoms, level) for atoms in frames}
    rows = [a for a in read_labels(store) if a.info.get("key") in keys]
    for atoms in rows:  # ASE writes "" unquoted, which breaks the comment line
        atoms.info = {k: v for k, v in atoms.info.items() if v is not None and v != ""}
    ase.io.write(path, rows, format="extxyz")
    return len(rows)


def run_demo(config: DemoConfig, echo: Callable[[str], None] = print) -> DemoResult:
    """Run (or resume) every stage in order; ``echo`` receives the progress and the answer."""
    import os

    import ase.io

    from molpre.chem import default_corpus, records_from_smiles
    from molpre.qc import LevelOfTheory, label_conformers, parse_level
    from molpre.runtime import seed_everything

    out = Path(config.out)
    study_config(config, out)  # bad budgets or sizes fail here, before any work
    parse_level(config.cheap_level)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = config.tracking_uri
    seed_everything(config.seed)

    clock = Stopwatch()
    labeled, others, rejected = split_corpus(
        records_from_smiles(default_corpus()), config.label_molecules, config.max_label_atoms,
        config.label_elements)
    unlabeled = others[:config.molecules]
    pretrain_smi = write_smiles(unlabeled, out / "pretrain_corpus.smi")
    echo(f"[1/5] intake: {len(labeled) + len(others) + len(rejected)} NCI molecules -> "
         f"{len(labeled)} to label, {len(unlabeled)} for the free-label corpus, "
         f"{len(rejected)} rejected {clock.lap()}")

    conf_path = out / "label_conformers.extxyz"
    ok, failed, reused = make_conformers(labeled, conf_path, config.seed, config.workers)
    level = LevelOfTheory(method=config.method, basis=config.basis)
    frames = ase.io.read(conf_path, index=":") if ok else []
    labels = out / "labels.db"
    summary = label_conformers(frames, labels, level, forces=config.forces,
                               workers=config.workers)
    n_data = labeled_set(labels, frames, level, out / "labeled.extxyz")
    what = "energies, forces" if config.forces else "energies"
    echo(f"[2/5] expensive labels {level.tag} ({what}): {summary.line()} "
         f"{clock.lap()}")
    check_sizes(config, n_data)

    pre, pre_reused = pretrain_stage(config, pretrain_smi, out)
    echo(f"[3/5] free labels + [4/5] pretraining: {pre['corpus']} conformers and displaced "
         f"copies at {config.cheap_level}, {pre['steps']} steps on their energies and forces"
         + (" (reused)" if pre_reused else "") + f" {clock.lap()}")

    study = study_stage(config, out, echo)
    model_uri, record = register_best(study, config.tracking_uri)
    echo(f"[5/5] study: {study.ran} children run, {study.reused} reused; parent run "
         f"{study.parent_run_id} {clock.lap()}\n")
    echo(answer(study, model_uri, record, out))

    predictions = Predictor_load(model_uri).predict(list(config.examples))
    predictions.to_csv(out / "predictions.csv", index=False)
    echo(predictions[["id", "energy_ev", "status", "error"]].to_string(index=False))

    counts = {"labeled": len(labeled), "pretrain_molecules": len(unlabeled),
              "rejected": len(rejected), "labels_ok": summary.ok, "labels_failed": summary.failed,
              "labels_skipped": summary.skipped, "study_rows": n_data}
    reuse = {"conformers": reused, "pretrain": pre_reused, "study": study.ran == 0}
    return DemoResult(out, counts, study, predictions,
                      {"pretrain": pre["run_id"], "study": study.parent_run_id,
                       "model": model_uri}, reuse)


class Stopwatch:
    """Wall time of each demo stage: ``lap()`` is ``(12 s)`` since the previous lap."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._last = self._now()

    def lap(self) -> str:
        now = self._now()
        spent, self._last = now - self._last, now
        return f"({spent:.0f} s)"


def Predictor_load(uri: str):  # noqa: N802 - reads as the call it wraps
    """``molpre.Predictor.load`` without a progress bar (the demo's last stage)."""
    from molpre.inference import Predictor

    return Predictor.load(uri, progress=False)


PRETRAIN_SEED_OFFSET = 1000


def pretrain_seed(config: DemoConfig) -> int:
    """Pretraining's seed, derived from the one seed but never a finetune seed (0..seeds-1):
    else the control arm and scratch at that seed would start from the same weights."""
    return config.seed + PRETRAIN_SEED_OFFSET


def pretrain_config(config: DemoConfig, corpus: Path, out: Path) -> dict[str, Any]:
    """The pretraining config: the corpus's conformers and a displaced copy of each, labeled
    at the cheap level, learned as energies and forces (the recipe measured in
    docs/results.md)."""
    return {
        "seed": pretrain_seed(config), "output": str(out / "pretrain"),
        "corpus": {"path": str(corpus), "max_molecules": None, "level": config.cheap_level,
                   "copies": 1, "conformers": config.pretrain_conformers,
                   "workers": config.workers},
        "model": {"preset": config.preset},
        "objectives": {"cheap_energy": {"weight": 1.0}, "cheap_forces": {"weight": 1.0},
                       "mask": {"weight": 0.0}, "contrast": {"weight": 0.0},
                       "denoise": {"weight": 0.0}},
        "train": {"max_steps": config.pretrain_steps, "epochs": 1000, "progress": False},
        "tracking": {"experiment": EXPERIMENT, "run_name": "demo-pretrain"},
    }


def pretrain_stage(config: DemoConfig, corpus: Path, out: Path) -> tuple[dict[str, Any], bool]:
    """Pretrain, or reuse OUT/pretrain/encoder.pt when it was made with the same config and
    corpus. ({"encoder", "run_id", "steps"}, reused). A changed config starts OUT/pretrain
    afresh (the old run and its checkpoints stay in the MLflow store)."""
    from molpre.train.pretrain import pretrain

    cfg = pretrain_config(config, corpus, out)
    outdir = Path(cfg["output"])
    record = outdir / "demo_stage.json"
    same = {**cfg, "corpus": {k: v for k, v in cfg["corpus"].items() if k != "workers"}}
    key = fingerprint({"config": same, "corpus": corpus.read_text()})  # workers: same result
    if cached(record, key) and (outdir / "encoder.pt").is_file():
        done = json.loads(record.read_text())
        return {"encoder": outdir / "encoder.pt", "run_id": done["run_id"],
                "steps": done["steps"], "corpus": done.get("corpus", "?")}, True
    started = json.loads(record.read_text()).get("key") if record.is_file() else None
    if started != key and outdir.exists():
        shutil.rmtree(outdir)  # other settings: its shards and checkpoints do not apply
    mark(record, key, False)  # same key, not done: the next run resumes from last.ckpt
    result = pretrain(cfg)
    conformers = result.manifest.get("conformers", "?")
    mark(record, key, True, run_id=result.run_id, steps=result.global_step, corpus=conformers)
    return {"encoder": result.encoder_path, "run_id": result.run_id,
            "steps": result.global_step, "corpus": conformers}, False


def check_sizes(config: DemoConfig, n_data: int) -> None:
    """ConfigError unless the labels cover the test split and the largest budget."""
    need = config.test_size + max(config.budgets)
    if n_data < need:
        raise ConfigError(f"demo: {n_data} labeled molecules, but test_size + the largest budget "
                          f"need {need}: raise label_molecules or lower budgets / test_size")


def study_config(config: DemoConfig, out: Path):
    """The demo's :class:`molpre.study.config.StudyConfig`; ConfigError if it is invalid."""
    from molpre.study.config import (
        DeltaSpec,
        EncoderSpec,
        SeedSpec,
        SplitSpec,
        StudyConfig,
        StudyConfigError,
        TrainSpec,
    )

    if not config.budgets:
        raise ConfigError("demo.budgets: give at least one label budget, e.g. [15, 30, 60]")
    study = StudyConfig(
        name="demo", data=str(out / "labeled.extxyz"), target="energy", unit="eV",
        out=str(out / "study"), experiment=EXPERIMENT,
        split=SplitSpec(kind="random", test_size=config.test_size, seed=config.seed),
        budgets=list(config.budgets),
        seeds=SeedSpec(small=config.seeds, large=config.seeds, small_max=max(config.budgets)),
        encoders=[EncoderSpec(name=ENCODER, path=str(out / "pretrain"), modes=["full"],
                              control=["full"], seed=pretrain_seed(config),
                              # a delta target is not the cheap energy the head learned
                              head="fresh" if delta_level(config) else "pretrained")],
        baselines=["linear"],
        delta=DeltaSpec(level=delta_level(config)),
        train=TrainSpec(preset=config.preset, epochs=config.finetune_epochs,
                        batch_size=config.batch_size, patience=config.patience,
                        max_minutes=3.0, val_min=config.val_min),
        workers=config.workers,
    )
    try:
        return study.validate()
    except StudyConfigError as err:
        raise ConfigError(f"demo: {err}") from None


def delta_level(config: DemoConfig) -> str | None:
    """The demo's delta level, None for the plain target ('none', '' or null)."""
    level = (config.delta or "").strip()
    return None if level.lower() in ("", "none", "null", "off") else level


def study_stage(config: DemoConfig, out: Path, echo: Callable[[str], None]):
    """Run (or resume) the study. Its finished children are reused only while everything
    they depend on is the same (study settings, labels, encoder); otherwise a new parent
    run starts (the old one stays in the store)."""
    from tqdm import tqdm

    from molpre.runtime import file_sha256
    from molpre.study.plan import plan
    from molpre.study.runner import run_study

    study = study_config(config, out)
    settings = {k: v for k, v in to_dict(config).items() if k not in ("out", "workers", "examples")}
    key = fingerprint({"settings": settings, "data": file_sha256(study.data),
                       "encoder": file_sha256(out / "pretrain" / "encoder.pt")})
    record = out / "study" / "demo_stage.json"
    if not cached(record, key):
        (out / "study" / "study.json").unlink(missing_ok=True)  # a new parent run
        mark(record, key, True)
    bar = tqdm(total=len(plan(study)), desc="[5/5] study children", unit="child",
               leave=False, mininterval=1.0)

    def progress(r: dict) -> None:  # the answer comes after: progress stays on stderr
        bar.update()
        bar.set_postfix_str(f"{r['arm']} N={r['budget']} seed {r['seed']}: "
                            f"{r.get('test_mae', float('nan')):.2f} {r.get('unit', '')}")

    try:
        return run_study(study, config.tracking_uri, progress=progress)
    finally:
        bar.close()


#: DemoConfig fields that ``molpre demo`` offers as options (help in the fields).
CLI_FIELDS = ("out", "molecules", "label_molecules", "forces", "delta", "pretrain_steps", "seeds",
              "finetune_epochs", "workers", "seed")


def config_from_dict(data: dict[str, Any]) -> DemoConfig:
    """DemoConfig from a dict (e.g. pipelines/demo.yaml's ``demo:`` section): unknown keys
    and wrong types are ConfigErrors naming the key."""
    return from_dict(DemoConfig, data)
