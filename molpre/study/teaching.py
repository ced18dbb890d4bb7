"""Taught arms: a child trained on its N labels plus a teacher's labels of the pool.

A study with ``teach: {study: OUTDIR}`` runs each taught arm ``<arm>+taught`` (see
:data:`molpre.study.plan.TAUGHT`) beside ``<arm>``. For budget N and seed s:

1. **Teacher**: the child ``<arm>, N, s`` of the teaching study (OUTDIR/children/<slug>), a
   finished study of the same data, target and split; typically a delta study, whose models
   are far better at the same N but need a cheap level (xTB) wherever they predict. Its
   ``split.csv`` must name exactly the child's train, validation and test molecules, so it
   learned from the child's N labels only and never saw a test molecule.
2. **Pool**: the molecules in none of the child's parts (2,000 - N in the QM9 protocol)
   have no label; the teacher gives them one at their given geometry (a delta teacher adds
   its cheap level, read from the teaching study's own cheap-level store). A molecule with an
   element the teacher never saw stays unlabeled, and is counted.
3. **Student**: ``<arm>``'s own finetune (encoder, head, lr, patience, time cap) on the N
   true labels plus the teacher's, validated on the child's own validation molecules (true
   labels) and scored on the test set (true labels). In a plain study it is plain: it
   predicts from the geometry alone. In a delta study it learns the target minus the cheap
   level like its arm, with the ``s`` of its own true labels (the teacher's do not move it),
   and needs the cheap level wherever it predicts.

With ``teach.extra`` the teacher also labels molecules beyond the study's data (audited
against it; molpre.study.teach_extra), and the student trains on them as well.

The report compares a taught arm with the taught scratch and the taught control (the same
starting path) and with its own untaught arm (``teaching`` in summary.json).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from molpre.study.config import StudyConfigError
from molpre.study.plan import Child


def teacher_dir(teach_out: str | Path, child: Child) -> Path:
    """The teaching study's child of the same arm, budget and seed as ``child``."""
    base = dataclasses.replace(child, arm=child.base_arm, taught=False)
    return Path(teach_out) / "children" / base.slug


def teaching_study(teach_out: str | Path, target: str) -> dict:
    """What a taught child needs of the teaching study (its ``summary.json``): the cheap
    level stores of a delta study (``delta_data``, [] for a plain one). StudyConfigError
    when the study is unfinished or scores another target."""
    path = Path(teach_out) / "summary.json"
    if not path.is_file():
        raise StudyConfigError(f"teach.study: {path} not found; give the OUTDIR of a finished "
                               "study (its report writes summary.json)")
    summary = json.loads(path.read_text())
    if summary.get("target") != target:
        raise StudyConfigError(f"teach.study: {teach_out} scores {summary.get('target')!r}, "
                               f"this study {target!r}")
    return {"delta_data": list((summary.get("delta") or {}).get("data") or [])}


def missing_teachers(teach_out: str | Path, children: list[Child]) -> list[str]:
    """Run names of the taught ``children`` whose teacher has no model.ckpt and split.csv."""
    missing = []
    for child in children:
        folder = teacher_dir(teach_out, child)
        if not ((folder / "model.ckpt").is_file() and (folder / "split.csv").is_file()):
            missing.append(child.run_name)
    return missing


def check_teachers(teach_out: str | Path, children: list[Child]) -> None:
    """StudyConfigError naming the taught children without a finished teacher."""
    missing = missing_teachers(teach_out, children)
    if missing:
        raise StudyConfigError(
            f"teach.study: {len(missing)} taught children have no teacher in {teach_out}/children "
            f"(first: {missing[:3]}); run those arms, budgets and seeds in the teaching study, "
            "or narrow teach.arms / teach.budgets")


def check_same_split(teacher: Path, split, data) -> None:
    """ValueError unless the teacher's split.csv names the child's train, val and test."""
    from molpre.data.splits import read_split

    theirs = read_split(teacher / "split.csv", data.mol_ids, data.groups)
    for part in ("train", "val", "test"):
        if not np.array_equal(np.sort(getattr(theirs, part)), np.sort(getattr(split, part))):
            raise ValueError(f"teacher {teacher}: its {part} molecules differ from this child's; "
                             "a teacher must have learned from the same labels (same data, "
                             "split, budget and seed)")


def pool_rows(split, n_rows: int) -> np.ndarray:
    """Rows in none of ``split``'s parts: the molecules without a label at this budget."""
    used = np.concatenate([split.train, split.val, split.test])
    return np.setdiff1d(np.arange(n_rows), used)


def teacher_labels(teacher: Path, data, rows: np.ndarray, target: str,
                   delta_data: list[str]) -> np.ndarray:
    """The teacher's ``target`` for ``rows`` of ``data`` (molpre units; NaN where it cannot:
    an element its labels never showed). A delta teacher's output plus its cheap level, read
    from ``delta_data`` (the teaching study's stores)."""
    from molpre.data.graph import atoms_to_sample
    from molpre.delta import Delta
    from molpre.inference import predict_targets
    from molpre.inference.inputs import known_mask
    from molpre.models.checkpoint import load_checkpoint

    model, payload = load_checkpoint(teacher / "model.ckpt")
    delta = Delta.from_meta(payload.get("meta", {}).get("delta"))
    atoms = [data.atoms[int(r)] for r in rows]
    known = known_mask([a.numbers for a in atoms], model.elements)
    cutoff = float(model.encoder.config.cutoff)
    values = predict_targets(model, [atoms_to_sample(a, cutoff) for a, k in zip(atoms, known, strict=True) if k])[target]
    if delta is not None:
        values = values + _cheap_terms(delta, data, rows[known], delta_data)
    labels = np.full((len(rows), *np.shape(values)[1:]), np.nan)
    labels[known] = values
    return labels


def _cheap_terms(delta, data, rows: np.ndarray, delta_data: list[str]) -> np.ndarray:
    """``s * (E_cheap - offsets)`` eV of ``rows`` from the teaching study's cheap stores."""
    from molpre.study.children import cheap_labels

    if not delta_data:
        raise ValueError(f"the teacher is a delta model on {delta.level}, but the teaching "
                         "study's summary names no cheap-level store")
    cheap = cheap_labels(data, delta_data)
    if cheap.level != delta.level:
        raise ValueError(f"the teacher's cheap level is {delta.level}, the teaching study's "
                         f"store holds {cheap.level}")
    return np.array([delta.baseline(data.atoms[int(r)].numbers, cheap.energies[int(r)])
                     for r in rows], dtype=np.float64)


def labelled_rows(labels: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``labels`` (``[n]`` or ``[n, ...]``) whose every value is
    finite: a teacher answers NaN for a molecule with an element it never saw."""
    if len(labels) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.all(np.isfinite(labels.reshape(len(labels), -1)), axis=1))


def taught_data(data, target: str, rows: np.ndarray, labels: np.ndarray, teacher: str):
    """``data`` with the teacher's ``labels`` on ``rows`` (NaN rows dropped), content hash
    and source naming the teacher; returns ``(data, taught rows)``."""
    keep = labelled_rows(labels)
    rows, labels = rows[keep], labels[keep]
    values = np.array(data.labels[target], dtype=np.float64, copy=True)
    values[rows] = labels
    digest = hashlib.sha256(data.sha256.encode() + rows.tobytes() + labels.tobytes()).hexdigest()
    student = dataclasses.replace(data, labels={**data.labels, target: values}, sha256=digest,
                                  source=f"{data.source} + labels by {teacher}")
    return student, rows


def run_taught(job: dict, data, split, fields: dict | None = None) -> tuple:
    """Train one taught child (see the module docstring); ``(FinetuneResult, tags)``.
    ``split``: the child's own split of ``data`` (true labels); ``fields``: its finetune
    settings (default ``job["finetune"]``; a delta study's carry its cheap level and ``s``)."""
    from molpre.data.splits import write_split
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    teach = job["teach"]
    teacher = Path(teach["teacher"])
    check_same_split(teacher, split, data)
    pool = pool_rows(split, len(data))
    labels = teacher_labels(teacher, data, pool, teach["target"], teach["delta_data"])
    student, taught = taught_data(data, teach["target"], pool, labels, teacher.name)
    fields = dict(fields or job["finetune"])
    n_extra = 0
    if teach.get("extra"):
        student, extra_rows = _with_extra(teach, teacher, data, student)
        taught, n_extra = np.concatenate([taught, extra_rows]), len(extra_rows)
        if fields.get("delta"):  # a delta student reads the extra molecules' cheap level too
            fields["delta"] = ",".join([fields["delta"], *teach["extra_delta_data"]])
    out = Path(job["finetune"]["out"])
    out.mkdir(parents=True, exist_ok=True)
    train = np.sort(np.concatenate([split.train, taught]))
    split_file = write_split(out / "taught_split.csv", dataclasses.replace(split, train=train),
                             student.mol_ids, student.groups)
    fields = {**fields, "budget": None, "test_ids": None, "split_file": str(split_file)}
    result = finetune(FinetuneConfig.from_dict(fields), student)
    tags = {"taught.teacher": str(teacher), "taught.n": str(len(taught)),
            "taught.untaught": str(len(pool) - (len(taught) - n_extra)),
            "taught.extra": str(n_extra)}
    return result, tags


def _with_extra(teach: dict, teacher: Path, data, student) -> tuple:
    """``student`` plus the prepared extra molecules (molpre.study.teach_extra) that the
    teacher can label, and their rows in it."""
    from molpre.study.teach_extra import extra_data, joined

    extra = extra_data(teach["extra"], data)
    labels = teacher_labels(teacher, extra, np.arange(len(extra)), teach["target"],
                            teach["extra_delta_data"])
    return joined(student, extra, teach["target"], labels)
