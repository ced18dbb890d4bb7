"""The contamination audit inside a study: each pretrained encoder's corpus and probe set
against the study's test split (see molpre.study.contamination)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from molpre.study import contamination as cont
from molpre.study.config import StudyConfig
from molpre.study.encoders import PreparedEncoder

log = logging.getLogger(__name__)


def _probe_keys(path: str, limit: int) -> list[cont.MoleculeKeys]:
    from molpre.data.datasets import read_frames

    return cont.eval_keys(read_frames(path, limit))


def audit_study(config: StudyConfig, encoders: dict[str, PreparedEncoder], data,
                test_ids: Path) -> dict[str, dict]:
    """``{encoder: {summary..., "overlap": {level: bool [n_test]}, "probe": ...}}``.

    Raises ContaminationError when a probe set overlaps the test split and
    ``audit.probe_leak`` is ``error``. Test molecules are in sorted row order, the order of
    every child's per-molecule errors.
    """
    if not encoders:
        return {}
    from molpre.study.plan import read_test_rows

    rows = read_test_rows(test_ids, data).tolist()
    test = cont.eval_keys([data.atoms[r] for r in rows])
    out = {}
    for name, enc in encoders.items():
        entry: dict = {"corpus": str(enc.corpus) if enc.corpus else None}
        if enc.probe_data:
            probe = _probe_keys(enc.probe_data, enc.probe_limit)
            try:
                cont.check_probe_set(probe, test)
                entry["probe"] = {"data": enc.probe_data, "n": len(probe), "leaked": 0}
            except cont.ContaminationError as err:
                if config.audit.probe_leak == "error":
                    raise cont.ContaminationError(f"encoder {name}: {err}") from None
                log.warning("encoder %s: %s", name, err)
                leaked = {k.mol_id for k in test} & {k.mol_id for k in probe}
                entry["probe"] = {"data": enc.probe_data, "n": len(probe), "leaked": len(leaked)}
        if enc.corpus is not None and Path(enc.corpus).exists():
            keys = cont.corpus_keys(enc.corpus, max_index=enc.corpus_limit)
            result = cont.audit(keys, test, str(enc.corpus), config.data)
            entry.update(result.summary())
            entry["corpus_limit"] = enc.corpus_limit
            entry["overlap"] = {k: v.tolist() for k, v in result.overlap.items()}
        else:
            log.warning("encoder %s: no corpus to audit (give encoders[].corpus)", name)
        out[name] = entry
    return out


def clean_vs_overlap(records: list[dict], audit: dict, level: str = "block") -> dict:
    """Per pretrained arm and budget: mean clean and overlapping gain over scratch (eV),
    from the children's per-molecule test errors, paired by seed."""
    by_key = {(r["arm"], r["budget"], r["seed"]): r for r in records}
    out = {}
    for (arm, budget, seed), r in by_key.items():
        enc = arm.split(":")[0]
        if ":" not in arm or enc not in audit or "overlap" not in audit[enc]:
            continue
        ref = by_key.get(("scratch", budget, seed))
        if ref is None or r["failed"] or ref["failed"] or not r["errors_file"] or not ref["errors_file"]:
            continue
        try:
            gain = cont.gain_by_overlap(np.load(r["errors_file"]), np.load(ref["errors_file"]),
                                        np.array(audit[enc]["overlap"][level]))
        except (OSError, ValueError):
            continue
        out.setdefault(f"{arm} N={budget}", []).append(gain)
    return {k: {"n_clean": v[0]["n_clean"], "n_overlap": v[0]["n_overlap"],
                "clean_gain_ev": float(np.nanmean([g["clean_gain"] for g in v])),
                "overlap_gain_ev": float(np.nanmean([g["overlap_gain"] for g in v]))
                if v[0]["n_overlap"] else None, "level": level}
            for k, v in out.items()}
