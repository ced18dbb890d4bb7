"""Molecules beyond the study's data for a teacher to label (``teach.extra``).

A taught child learns from its N true labels plus its teacher's labels of the pool molecules
nobody labeled (molpre.study.teaching). With ``teach.extra: FILE`` (extxyz or an ASE .db
label file: one geometry per molecule, its labels unused) the teacher labels these molecules
too, and the student trains on them as well; nothing changes at prediction time.

Before any child runs, the study prepares the file once (:func:`prepare_extra`):

- **Audit.** A molecule whose InChIKey connectivity block (stereo and isotopes aside) is any
  molecule's of the study's data (test, validation and pool alike) is dropped, as is one
  whose keys cannot be computed (it could not be audited) and every repeat of a full
  InChIKey; the counts go to OUT/teach-extra.json and the report.
- **Rows.** The kept molecules (the first ``teach.extra_max``, in file order) are written to
  OUT/teach-extra.extxyz with ``mol_id`` ``extra:<their id>``, so they never share an id
  with the study's rows.
- **Cheap level.** When the teacher is a delta model, its cheap level is computed for them
  into OUT/teach-extra-<level>.db (content-keyed: a resumed study computes nothing twice),
  which the teacher (and a delta student) read as they read the study's own store.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from molpre.study.teaching import labelled_rows

EXTRA_FILE = "teach-extra.extxyz"
AUDIT_FILE = "teach-extra.json"
PREFIX = "extra:"


def audited_extra(frames: list, study_frames: list) -> tuple[list, dict]:
    """``(kept frames, counts)``: ``frames`` without the molecules the study's data holds
    (by InChIKey connectivity block), those whose keys cannot be computed and repeats of a
    full InChIKey; each kept frame's info gets its ``inchikey`` and ``smiles``."""
    from molpre.study.contamination import eval_keys

    banned = {k.block for k in eval_keys(study_frames)} - {""}
    seen: set[str] = set()
    kept, counts = [], {"given": len(frames), "in_study": 0, "unreadable": 0, "repeated": 0}
    for atoms, keys in zip(frames, eval_keys(frames), strict=True):
        if not keys.inchikey:
            counts["unreadable"] += 1
        elif keys.block in banned:
            counts["in_study"] += 1
        elif keys.inchikey in seen:
            counts["repeated"] += 1
        else:
            seen.add(keys.inchikey)
            atoms.info.update(inchikey=keys.inchikey, smiles=keys.smiles)
            kept.append(atoms)
    counts["kept"] = len(kept)
    return kept, counts


def _named(frames: list) -> list:
    """The frames with ``mol_id`` ``extra:<id>`` (their own id, else their row) and no
    calculator results (a label the file carried is not the teacher's)."""
    from ase import Atoms

    named = []
    for row, atoms in enumerate(frames):
        info = {k: v for k, v in atoms.info.items() if k in ("inchikey", "smiles", "charge")}
        info["mol_id"] = PREFIX + str(atoms.info.get("mol_id", f"row{row}"))
        named.append(Atoms(numbers=atoms.numbers, positions=atoms.positions, info=info))
    return named


def extra_data(path: str | Path, like):
    """The molecules of a prepared OUT/teach-extra.extxyz as LabeledData without labels
    (every target of ``like``, the study's data, is NaN), grouped by InChIKey."""
    from molpre.data.datasets import LabeledData, frame_groups, read_frames
    from molpre.runtime import file_sha256

    frames = read_frames(path)
    labels = {k: np.full((len(frames), *np.shape(v)[1:]), np.nan) for k, v in like.labels.items()}
    return LabeledData(frames, labels, [str(a.info["mol_id"]) for a in frames],
                       frame_groups(frames), None, str(path), file_sha256(path), like.specs)


def joined(data, extra, target: str, labels: np.ndarray):
    """``(data + the rows of extra with finite labels, their rows in it)``: ``labels`` are
    ``extra``'s values of ``target`` (molpre units; NaN rows dropped)."""
    import dataclasses

    keep = labelled_rows(labels)
    part = extra.subset(keep)
    values = {k: np.concatenate([v, labels[keep] if k == target else part.labels[k]])
              for k, v in data.labels.items()}
    digest = hashlib.sha256(data.sha256.encode() + extra.sha256.encode()
                            + labels[keep].tobytes()).hexdigest()
    rows = np.arange(len(data), len(data) + len(keep))
    return dataclasses.replace(
        data, atoms=[*data.atoms, *part.atoms], labels=values,
        mol_ids=[*data.mol_ids, *part.mol_ids], groups=[*data.groups, *part.groups],
        forces=None, sha256=digest, source=f"{data.source} + {len(keep)} of {extra.source}"), rows


def prepare_extra(source: str, extra_max: int | None, data, out: Path,
                  delta_data: list[str], workers: int) -> dict:
    """Audit ``source`` against the study's ``data``, write OUT/teach-extra.extxyz (and the
    cheap level of a delta teacher, ``delta_data`` being the teaching study's stores) and
    return what each taught child's job carries: ``{"extra": path, "extra_delta_data":
    [store] or [], "extra_audit": counts}``. ValueError when no molecule is left."""
    import ase.io

    from molpre.data.datasets import read_frames
    from molpre.outputs import atomic_output

    kept, counts = audited_extra(read_frames(source), list(data.atoms))
    kept = _named(kept[:extra_max] if extra_max is not None else kept)
    counts.update(used=len(kept), source=str(source))
    if not kept:
        raise ValueError(f"teach.extra: no molecule of {source} is left after the audit "
                         f"({counts}); give molecules the study's data does not hold")
    path = out / EXTRA_FILE
    with atomic_output(path) as handle:
        ase.io.write(handle, kept, format="extxyz")
    with atomic_output(out / AUDIT_FILE) as handle:
        handle.write(json.dumps(counts, indent=2) + "\n")
    stores = _extra_cheap(path, data, out, delta_data, workers)
    return {"extra": str(path.resolve()), "extra_delta_data": stores, "extra_audit": counts}


def _extra_cheap(path: Path, data, out: Path, delta_data: list[str], workers: int) -> list[str]:
    """The teacher's cheap level computed for the extra molecules (a delta teacher), else []."""
    if not delta_data:
        return []
    from molpre.delta import cheap_labels
    from molpre.study.children import cheap_labels as read_once  # cached per process

    level = read_once(data, delta_data).level
    store = out / f"teach-extra-{level.replace('/', '_')}.db"
    cheap_labels(extra_data(path, data), level, cache=str(store), workers=workers)
    return [str(store.resolve())]


RECORD_FILE = "teach.json"


def teaching_record(extra: str | None, extra_max: int | None) -> dict:
    """What a taught child learned beyond its pool: the extra file and count it was given."""
    return {"extra": str(Path(extra).resolve()) if extra else None, "extra_max": extra_max}


def check_same_teaching(out: Path, record: dict, finished_taught: list[str]) -> None:
    """ValueError when taught children of this OUTDIR already finished with other extra
    molecules (OUT/teach.json; a study without it taught the pool only): a resumed study
    would report them beside children taught otherwise. Writes the record otherwise."""
    from molpre.outputs import atomic_output

    path = out / RECORD_FILE
    before = json.loads(path.read_text()) if path.is_file() else teaching_record(None, None)
    if finished_taught and before != record:
        raise ValueError(
            f"{len(finished_taught)} taught children of {out} (first: {finished_taught[0]}) "
            f"were taught with extra={before['extra']}, extra_max={before['extra_max']}; this "
            f"config says extra={record['extra']}, extra_max={record['extra_max']}: give "
            "another out (a new parent), or the same teach.extra")
    with atomic_output(path) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
