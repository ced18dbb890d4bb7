"""Which device trains: ``auto`` | ``cpu`` | ``gpu``, a device count, and torch threads."""

from __future__ import annotations

import torch

ACCELERATORS = ("auto", "cpu", "gpu")


def resolve_accelerator(name: str) -> str:
    """``cpu`` or ``gpu`` for a configured accelerator; ``auto`` is ``gpu`` when torch sees a
    CUDA device, else ``cpu``. ValueError for anything else, or ``gpu`` without a GPU."""
    name = str(name).lower()
    if name not in ACCELERATORS:
        raise ValueError(f"accelerator {name!r}: use one of {', '.join(ACCELERATORS)}")
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if name == "gpu" and not torch.cuda.is_available():
        raise ValueError("accelerator 'gpu' asked for, but torch sees no CUDA device "
                         "(use --accelerator auto or cpu)")
    return name


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when given (None: keep torch's default)."""
    if threads:
        torch.set_num_threads(int(threads))
