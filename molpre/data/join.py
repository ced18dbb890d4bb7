"""Join shard folders into one corpus (``molpre join-shards``).

The joined folder is an ordinary shard directory (:mod:`molpre.data.shards`): shards renamed
``shard-NNNNN.npz`` and every ``mol_index`` renumbered so the molecules hold consecutive
ranges again (``corpus.max_molecules`` and the readers rely on that), ``molecules.csv`` and
``failures.csv`` concatenated, the manifest written last. Shard order::

    first[:-1], second, third, ..., first[-1]

so the first folder's last shard ends the join and ``corpus.val_shards: 1`` holds out the same
shard it held out in the first corpus. Labeled folders must share the level and whether forces
are stored. The per-element energy offsets are refitted over every joined energy (the
manifest's promise: a fit over the whole corpus), or kept from the first folder with
``keep_offsets`` (to resume a pretraining run begun on the first corpus: it then learns the
same quantities). Memory stays flat: one shard at a time, ``molecules.csv`` streamed.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from molpre.data.shards import (
    FAILURE_COLUMNS,
    FAILURES,
    FORMAT,
    MANIFEST,
    MOLECULE_COLUMNS,
    MOLECULES,
    OffsetFit,
    read_manifest,
)


class JoinError(ValueError):
    """Folders that cannot be joined; the message names the folder and the reason."""


def _labels_key(manifest: dict) -> tuple | None:
    labels = manifest.get("labels")
    return (labels["level"], bool(labels.get("forces"))) if labels else None


def check_joinable(folders: list[Path]) -> list[dict]:
    """The manifests of ``folders`` (at least two, distinct, each complete and non-empty,
    labeled alike), or :class:`JoinError`."""
    if len(folders) < 2:
        raise JoinError("give at least two shard folders to join")
    real = [folder.resolve() for folder in folders]
    if len(set(real)) < len(real):
        raise JoinError("a shard folder is given twice")
    manifests = []
    for folder in folders:
        try:
            manifest = read_manifest(folder)
        except (FileNotFoundError, ValueError) as err:  # JSONDecodeError is a ValueError
            raise JoinError(str(err)) from None
        if not manifest.get("shards"):
            raise JoinError(f"{folder} holds no shards")
        manifests.append(manifest)
    first = _labels_key(manifests[0])
    for folder, manifest in zip(folders[1:], manifests[1:], strict=True):
        if _labels_key(manifest) != first:
            raise JoinError(f"{folder} is labeled {_labels_key(manifest) or 'not at all'} but "
                            f"{folders[0]} {first or 'not at all'}: join corpora of one level")
    return manifests


def join_order(manifests: list[dict]) -> list[tuple[int, int]]:
    """``(folder, position in its shard list)`` in joined order: the first folder's shards
    but its last, every other folder's shards, then the first folder's last shard."""
    head = len(manifests[0]["shards"]) - 1
    order = [(0, p) for p in range(head)]
    for k, manifest in enumerate(manifests[1:], start=1):
        order += [(k, p) for p in range(len(manifest["shards"]))]
    return order + [(0, head)]


def _rows_by_shard(path: Path) -> Iterator[tuple[int, list[list[str]]]]:
    """``(shard position, its molecules.csv rows)`` in file order (rows are written shard by
    shard, so a folder's rows come grouped)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for shard, rows in itertools.groupby(reader, key=lambda row: row[-1]):
            yield int(shard), list(rows)


class _Rows:
    """One folder's ``molecules.csv``, handed out shard by shard in increasing order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._groups = _rows_by_shard(folder / MOLECULES)
        self._held: dict[int, list[list[str]]] = {}

    def take(self, position: int) -> list[list[str]]:
        while position not in self._held:
            try:
                shard, rows = next(self._groups)
            except (StopIteration, ValueError) as err:
                raise JoinError(f"{self.folder / MOLECULES} has no rows for shard {position}: "
                                "it does not match the folder's manifest") from err
            self._held[shard] = rows
        return self._held.pop(position)


def _renumbered(path: Path, start: int, fit: OffsetFit | None) -> tuple[dict, int]:
    """A shard's arrays with ``mol_index`` set to ``start, start + 1, ...``, fitting offsets."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    count = len(arrays["n_atoms"])
    arrays["mol_index"] = np.arange(start, start + count, dtype=np.int64)
    if fit is not None and "energy" in arrays:
        atom_start = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
        conf_start = np.concatenate([[0], np.cumsum(arrays["n_conf"])])
        for i in range(count):
            fit.add(arrays["numbers"][atom_start[i]:atom_start[i + 1]],
                    arrays["energy"][conf_start[i]:conf_start[i + 1]])
    return arrays, count


def _joined_labels(manifests: list[dict], fit: OffsetFit, keep_offsets: bool) -> dict | None:
    labels = manifests[0].get("labels")
    if not labels:
        return None
    offsets = labels["offsets"] if keep_offsets else {str(z): v for z, v in fit.solve().items()}
    return dict(labels, offsets=offsets)


def _merged_reasons(manifests: list[dict]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for manifest in manifests:
        for reason, count in (manifest.get("failure_reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    return reasons


def _append_failures(folders: list[Path], out: Path) -> None:
    with open(out / FAILURES, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FAILURE_COLUMNS)
        for folder in folders:
            path = folder / FAILURES
            if path.is_file():
                with open(path, newline="") as source:
                    reader = csv.reader(source)
                    next(reader, None)
                    writer.writerows(reader)


def join_shards(folders: list[str | Path], out: str | Path, *, keep_offsets: bool = False,
                progress: bool = False) -> dict:
    """Join the shard ``folders`` into ``out`` (created; must not exist or be empty); return
    the joined manifest. See the module docstring for the order and the offsets."""
    from tqdm import tqdm

    start_time = time.perf_counter()
    folders = [Path(folder) for folder in folders]
    manifests = check_joinable(folders)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise JoinError(f"{out} exists and is not an empty folder: give a new one (an "
                        "interrupted join leaves no manifest.json; remove it and run again)")
    out.mkdir(parents=True, exist_ok=True)
    rows = [_Rows(folder) for folder in folders]
    fit = None if keep_offsets else OffsetFit()
    shards, next_index = [], 0
    with open(out / MOLECULES, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MOLECULE_COLUMNS)
        for new, (k, p) in enumerate(tqdm(join_order(manifests), desc="join", unit="shard",
                                          disable=not progress)):
            entry = manifests[k]["shards"][p]
            arrays, count = _renumbered(folders[k] / entry["file"], next_index, fit)
            shard_rows = rows[k].take(p)
            if len(shard_rows) != count:
                raise JoinError(f"{folders[k] / MOLECULES}: {len(shard_rows)} rows for shard "
                                f"{entry['file']} of {count} molecules")
            name = f"shard-{new:05d}.npz"
            np.savez(out / name, **arrays)
            writer.writerows([str(next_index + i), *row[1:-1], str(new)]
                             for i, row in enumerate(shard_rows))
            shards.append({"file": name, "molecules": count,
                           "conformers": int(np.sum(arrays["n_conf"]))})
            next_index += count
    _append_failures(folders, out)
    manifest = {
        "format": FORMAT, "labels": _joined_labels(manifests, fit, keep_offsets),
        "molecules": next_index, "conformers": sum(s["conformers"] for s in shards),
        "failed": sum(m.get("failed", 0) for m in manifests),
        "failure_reasons": _merged_reasons(manifests), "shards": shards,
        "settings": manifests[0].get("settings", {}),
        "build_seconds": round(sum(m.get("build_seconds", 0.0) for m in manifests), 3),
        "join_seconds": round(time.perf_counter() - start_time, 3),
        "sources": [{"path": str(folder.resolve()), "molecules": m["molecules"],
                     "conformers": m["conformers"], "settings": m.get("settings", {})}
                    for folder, m in zip(folders, manifests, strict=True)],
    }
    if manifest["labels"]:
        manifest["offsets_from"] = (str(folders[0].resolve()) if keep_offsets
                                    else "refit over the joined energies")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest
