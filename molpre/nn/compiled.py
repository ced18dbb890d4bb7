"""Opt-in ``torch.compile`` of the interaction blocks, with a clean fallback to eager.

``torch.compile(dynamic=True, fullgraph=True)`` fuses the blocks' many small element-wise
ops into a few generated kernels; one graph serves every batch shape (sizes are symbolic),
so a run compiles once (seconds to a minute on a CPU, cached on disk by Inductor after).
It is used only where it is safe and pays:

* no gradient, or gradients for the weights only (prediction, pretraining, energy-only
  finetuning): compiled;
* positions that need a gradient under grad mode (forces during training: their loss needs
  a double backward, which compiled graphs do not support; forces at inference): eager.

A compile failure (no C++ compiler, an unsupported op) is reported once as a warning and
the runner stays eager. Switch it on with :meth:`BlockRunner.enable` or the environment
variable ``MOLPRE_COMPILE=1``. The numbers are the eager ones to float rounding.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch

ENV = "MOLPRE_COMPILE"


#: Planned optimizer steps from which ``compile: null`` (auto) compiles: at the eager 5-10
#: steps/s of a CPU that is 3-7 minutes, where a 1-2 minute compile for ~2x steps/s pays.
AUTO_COMPILE_STEPS = 2000


#: Compiled graphs one function may keep (Dynamo's default is 8). Each model instance, grad
#: mode and side of an Inductor size guard (4,096 edges) is a graph of its own, and a process
#: that builds models one after another (a study worker running child after child, a
#: committee, a notebook) would pass 8 and fall back to eager for good.
RECOMPILE_LIMIT = 64


def allow_recompiles(limit: int = RECOMPILE_LIMIT) -> None:
    """Raise Dynamo's per-function graph limit to at least ``limit`` (never lowers it)."""
    import torch._dynamo.config as dynamo

    dynamo.recompile_limit = max(int(dynamo.recompile_limit), limit)
    dynamo.accumulated_recompile_limit = max(int(dynamo.accumulated_recompile_limit), 4 * limit)


def compile_requested() -> bool:
    """True when ``MOLPRE_COMPILE`` is 1/true/yes/on."""
    return os.environ.get(ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def compile_wanted(setting: bool | None, planned_steps: int | None) -> bool:
    """Whether a run compiles: ``setting`` when given, else (auto) when ``MOLPRE_COMPILE``
    asks or the run plans at least :data:`AUTO_COMPILE_STEPS` steps (``None``: unknown)."""
    if setting is not None:
        return bool(setting)
    return compile_requested() or (planned_steps or 0) >= AUTO_COMPILE_STEPS


#: What :meth:`BlockRunner.compiled_call` returns once the compile has failed.
FAILED = object()


class BlockRunner:
    """Calls ``fn`` (given at each call: its owner's bound method) eagerly or through a
    ``torch.compile`` of it built on first use.

    Not an ``nn.Module``; a pickled or deep-copied runner comes back without its compiled
    callable (the copy compiles its own owner's method), so checkpoints, EMA copies and DDP
    workers are unaffected. ``backend``: torch.compile's (``aot_eager`` traces the same graph
    without generating code, for tests).
    """

    def __init__(self, enabled: bool | None = None, backend: str = "inductor") -> None:
        self.enabled = compile_requested() if enabled is None else bool(enabled)
        self.backend = backend
        self._compiled: Callable | None = None
        self.failed: str | None = None

    def enable(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)

    def usable(self, needs_double_backward: bool) -> bool:
        """Whether the compiled path runs for this call."""
        return self.enabled and self.failed is None and not needs_double_backward

    def __call__(self, fn: Callable, *args, needs_double_backward: bool = False):
        if not self.usable(needs_double_backward):
            return fn(*args)
        out = self.compiled_call(fn, args, "the encoder blocks")
        return fn(*args) if out is FAILED else out

    def compiled_call(self, fn: Callable, args: tuple, what: str):
        """``fn(*args)`` through its compile (built on the first call), or :data:`FAILED`
        when compiling fails: then ``failed`` holds the reason, warned about once as
        "torch.compile of ``what`` failed"."""
        if self._compiled is None:
            allow_recompiles()
            self._compiled = torch.compile(fn, dynamic=True, fullgraph=True, backend=self.backend)
        try:
            return self._compiled(*args)
        except Exception as err:  # noqa: BLE001 - any compile error means: stay eager
            self.failed = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.warn(f"torch.compile of {what} failed, running eagerly ({self.failed})",
                          RuntimeWarning, stacklevel=4)
            return FAILED

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_compiled": None}

    def __deepcopy__(self, memo) -> BlockRunner:
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__getstate__())
        return copy
