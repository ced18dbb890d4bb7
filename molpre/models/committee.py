"""A committee (ensemble) of PropertyModels: mean predictions, their spread, a domain check.

``Committee(members)`` runs K models of the same targets (``molpre finetune --ensemble K``:
seeds seed..seed+K-1 on one split) and returns what one PropertyModel returns, averaged
over members, plus the members' values under ``<output key>_members`` (``[K, B]``,
``[K, B, 3]``; forces ``[K, N, 3]``). Everything that takes a PropertyModel (evaluation,
the Predictor, the calculator) takes a Committee. Encoder outputs (node features, the
graph embedding) are the first member's: members' feature spaces are not comparable.

Spreads are population standard deviations over members (``ddof=0``, as MACE committees).
:class:`Domain` is the calibrated out-of-domain check: per value column, a high quantile of
the committee spread on the validation set (per atom for extensive targets such as the
energy), and the atom count of the largest training molecule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from molpre.data import keys
from molpre.data.graph import collate
from molpre.targets import get_target

#: Suffix of the per-member outputs of a Committee forward.
MEMBERS = "_members"
#: Suffix of a spread column (``energy_ev_std``).
STD = "_std"
#: Default quantile of the validation spread above which a prediction is out of domain.
OOD_QUANTILE = 0.99


class Committee(nn.Module):
    """K PropertyModels of the same targets; see the module docstring."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        targets = [list(m.targets) for m in members]
        if any(t != targets[0] for t in targets):
            raise ValueError(f"committee members predict different targets: {targets}")
        self.members = nn.ModuleList(members)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder (its config gives the cutoff, its weights the dtype)."""
        return self.members[0].encoder

    @property
    def targets(self) -> list[str]:
        return self.members[0].targets

    @property
    def specs(self) -> dict:
        return self.members[0].specs

    @property
    def elements(self) -> list[int]:
        """Elements every member was trained on."""
        common = set(self.members[0].elements)
        for member in self.members[1:]:
            common &= set(member.elements)
        return sorted(common)

    @property
    def atomref(self):
        """The first member's energy reference (members share one training set)."""
        return self.members[0].atomref

    def forward(self, batch: dict[str, torch.Tensor], compute_forces: bool = False) -> dict[str, torch.Tensor]:
        """The first member's outputs, with every prediction replaced by the members' mean
        and the members' values added as ``<key>_members`` (leading dimension K)."""
        outs = [member(batch, compute_forces=compute_forces) for member in self.members]
        merged = dict(outs[0])
        for key in self._prediction_keys(outs[0]):
            stacked = torch.stack([out[key] for out in outs])
            merged[key] = stacked.mean(0)
            merged[key + MEMBERS] = stacked
        return merged

    def _prediction_keys(self, out: dict) -> list[str]:
        names = [get_target(name).output_key for name in self.targets]
        return names + ([keys.PREDICTED_FORCES] if keys.PREDICTED_FORCES in out else [])


def member_columns(out: dict[str, torch.Tensor], targets: Sequence[str]) -> dict[str, np.ndarray]:
    """``{column: [K, B]}``: each member's Predictor column values (vectors as magnitudes)."""
    columns = {}
    for name in targets:
        spec = get_target(name)
        values = out[spec.output_key + MEMBERS].detach().double().cpu().numpy()
        columns[spec.column] = np.stack([spec.kind.scalar(member) for member in values])
    return columns


def mean_and_std(out: dict[str, torch.Tensor], targets: Sequence[str]) -> dict[str, np.ndarray]:
    """``{column: [B], column_std: [B]}`` from a Committee forward (population std)."""
    result = {}
    for column, values in member_columns(out, targets).items():
        result[column] = values.mean(axis=0)
        result[column + STD] = values.std(axis=0)
    return result


@dataclass
class Domain:
    """The calibrated domain of a committee.

    thresholds: ``{column: spread}`` above which a prediction is out of domain (per atom
    where ``per_atom[column]``, e.g. eV/atom for ``energy_ev``); quantile: the validation
    quantile they are; max_atoms: atoms of the largest training molecule (0: unknown).
    """

    thresholds: dict[str, float] = field(default_factory=dict)
    per_atom: dict[str, bool] = field(default_factory=dict)
    quantile: float = OOD_QUANTILE
    max_atoms: int = 0
    n_calibration: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> Domain | None:
        """The ``domain`` entry of a checkpoint's meta, or None."""
        data = (meta or {}).get("domain")
        return cls(**data) if data else None

    def spread(self, column: str, std: float, n_atoms: int) -> float:
        """The compared spread of ``column``: ``std``, per atom where calibrated so."""
        return std / max(n_atoms, 1) if self.per_atom.get(column) else std

    def reason(self, stds: dict[str, float], n_atoms: int) -> str:
        """Why a prediction is out of domain ('' when it is not). ``stds``: ``{column: std}``."""
        reasons = []
        for column, limit in self.thresholds.items():
            if column not in stds:
                continue
            value = self.spread(column, float(stds[column]), n_atoms)
            if not value <= limit:  # NaN spreads count as out of domain
                unit = "/atom" if self.per_atom.get(column) else ""
                reasons.append(f"{column} committee spread {value:.3g}{unit} > {limit:.3g} "
                               f"(validation q{self.quantile:g})")
        if self.max_atoms and n_atoms > self.max_atoms:
            reasons.append(f"{n_atoms} atoms: larger than any training molecule ({self.max_atoms})")
        return "; ".join(reasons)


def calibrate(committee: Committee, samples: Sequence[dict[str, torch.Tensor]], max_atoms: int,
              quantile: float = OOD_QUANTILE, batch_size: int = 64) -> Domain:
    """The Domain of ``committee`` from its spreads on ``samples`` (the validation set):
    per value column, the ``quantile`` of the spread (per atom for extensive targets)."""
    stds = committee_spreads(committee, samples, batch_size)
    per_atom = {get_target(n).column: get_target(n).kind.per_atom for n in committee.targets}
    sizes = np.array([int(s[keys.ATOMIC_NUMBERS].numel()) for s in samples], dtype=float)
    thresholds = {}
    for column, values in stds.items():
        spread = values / np.maximum(sizes, 1) if per_atom[column] else values
        thresholds[column] = float(np.quantile(spread, quantile)) if len(spread) else float("inf")
    return Domain(thresholds, per_atom, float(quantile), int(max_atoms), len(samples))


def committee_spreads(committee: Committee, samples: Sequence[dict[str, torch.Tensor]],
                      batch_size: int = 64) -> dict[str, np.ndarray]:
    """``{column: [n]}``: the committee spread (std over members) of every sample."""
    chunks: dict[str, list[np.ndarray]] = {}
    was_training = committee.training
    committee.eval()
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            out = committee(collate(list(samples[start:start + batch_size])))
            for column, values in member_columns(out, committee.targets).items():
                chunks.setdefault(column, []).append(values.std(axis=0))
    committee.train(was_training)
    return {column: np.concatenate(parts) for column, parts in chunks.items()}


def out_of_domain_fraction(committee: Committee, domain: Domain,
                           samples: Sequence[dict[str, torch.Tensor]]) -> float:
    """Share of ``samples`` that ``domain`` flags (NaN for no samples)."""
    if not samples:
        return float("nan")
    stds = committee_spreads(committee, samples)
    flagged = [bool(domain.reason({c: v[i] for c, v in stds.items()},
                                  int(s[keys.ATOMIC_NUMBERS].numel())))
               for i, s in enumerate(samples)]
    return float(np.mean(flagged))
