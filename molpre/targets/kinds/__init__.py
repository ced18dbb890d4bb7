"""Target kinds, one module each, registered by name (see :mod:`.base` for their shape).

Every module of this package is imported here, so a new kind module registers itself.
Built in: ``extensive``, ``intensive``, ``vector`` and ``forces`` (the gradient of an
extensive target).
"""

from __future__ import annotations

import importlib
import pkgutil

from molpre.targets.kinds.base import (
    KINDS,
    PENALTIES,
    Fitted,
    HeadDims,
    HeadInputs,
    HeadOutput,
    Kind,
    MeanPrior,
    Prior,
    get_kind,
    register_kind,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["KINDS", "Fitted", "HeadDims", "HeadInputs", "HeadOutput", "Kind", "MeanPrior", "PENALTIES",
           "Prior", "get_kind", "register_kind"]
