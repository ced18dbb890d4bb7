"""Helpers shared by molpre's config dataclasses (encoder, finetune, demo)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def reject_unknown_keys(
    cls: type, data: Mapping[str, Any], what: str, error: type[Exception] = ValueError
) -> None:
    """Raise ``error`` naming every key of ``data`` that is not a field of dataclass ``cls``.

    A typo in a YAML file or a checkpoint from another version then fails with one clear
    message instead of a TypeError from ``cls(**data)``.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"unknown {what} config keys: {unknown}")
