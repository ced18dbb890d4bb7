"""Supervised pretraining on a cheap level of theory: ``cheap_energy`` and ``cheap_forces``.

A labeled corpus (``workflows/corpus_xtb.yaml``: GFN2-xTB energies and forces of every
conformer and displaced copy) costs minutes where expensive labels cost days, and its labels
carry the physics the expensive target shares. Both objectives read the uncorrupted
geometry (``clean``: the pretraining module runs them on their own encoder pass, so masking
or denoising in the same run never corrupts what they learn from).

* ``cheap_energy``: a head sums atomic terms into the molecule's cheap energy minus the
  corpus's per-element fit (keys.CHEAP_ENERGY, eV); the loss is the squared error per atom,
  in units of ``scale`` (eV/atom; default: the corpus's own spread, set by pretraining).
* ``cheap_forces``: minus the gradient of that energy with respect to the positions against
  keys.CHEAP_FORCES (eV/Angstrom), squared error in units of ``scale`` (eV/Angstrom). With
  ``cheap_energy`` active both use one energy head, so energy and forces stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from molpre.data import keys
from molpre.models.pretrain_heads import mlp
from molpre.train.objectives.base import EncoderDims, Objective, register


class CheapEnergyHead(nn.Module):
    """Molecule energy [B] eV (minus the per-element fit) as a sum of atomic terms
    ``MLP(h_i)`` over node features [N, F]."""

    def __init__(self, features: int):
        super().__init__()
        self.atomic = mlp(features, features, 1)

    def atomic_terms(self, features: torch.Tensor) -> torch.Tensor:
        """Atomic terms ``[N]`` of node features ``[N, F]`` (before the objective's scale)."""
        return self.atomic(features).squeeze(-1)

    def forward(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        atomic = self.atomic_terms(out[keys.NODE_FEATURES])
        total = torch.zeros(int(out[keys.NUM_GRAPHS]), dtype=atomic.dtype, device=atomic.device)
        return total.index_add(0, out[keys.BATCH], atomic)


def predicted_energy(out: dict[str, torch.Tensor], head: CheapEnergyHead,
                     scale: float) -> torch.Tensor:
    """``[B]`` eV: ``scale * head(out)``, computed once per encoder pass (cached in ``out``)."""
    cache = out.setdefault("_cheap_energy", {})
    if id(head) not in cache:
        cache[id(head)] = head(out) * scale
    return cache[id(head)]


GRADIENT = "_cheap_energy_gradient"  # {id(head): d(sum of atomic terms)/dpos [N, 3]}, compiled


def _require(out: dict, key: str, name: str) -> torch.Tensor:
    if key not in out:
        raise ValueError(f"objective {name} needs a labeled corpus ({key} missing): build one "
                         "with `molpre submit workflows/corpus_xtb.yaml`")
    return out[key]


@dataclass(frozen=True)
class CheapEnergyOptions:
    """scale: eV per atom, the unit of the loss (None: the corpus's spread)."""

    scale: float | None = None


@dataclass(frozen=True)
class CheapForcesOptions:
    """scale: eV/Angstrom, the unit of the loss (None: the corpus's spread)."""

    scale: float | None = None


@register
class CheapEnergy(Objective):
    """Target: keys.CHEAP_ENERGY per atom."""

    name = "cheap_energy"
    clean = True
    needs_labels = "energy"
    Options = CheapEnergyOptions

    def build_head(self, dims: EncoderDims) -> CheapEnergyHead:
        return CheapEnergyHead(dims.features)

    def loss(self, out):
        target = _require(out, keys.CHEAP_ENERGY, self.name).to(out[keys.NODE_FEATURES].dtype)
        scale = self.options.scale or 1.0
        atoms = out[keys.NUM_ATOMS].to(target.dtype)
        error = (predicted_energy(out, self.head, scale) - target) / atoms
        return (error / scale).pow(2).mean(), {"mae_mev_per_atom": error.abs().mean() * 1000}


@register
class CheapForces(Objective):
    """Target: keys.CHEAP_FORCES; forces are minus the gradient of the cheap energy head."""

    name = "cheap_forces"
    clean = True
    needs_positions_grad = True
    needs_labels = "forces"
    Options = CheapForcesOptions

    def build_head(self, dims: EncoderDims) -> CheapEnergyHead:
        return CheapEnergyHead(dims.features)

    def bind(self, objectives: dict[str, Objective]) -> None:
        """Use ``cheap_energy``'s head when that objective is active (one energy model)."""
        energy = objectives.get("cheap_energy")
        if energy is not None:
            self.head = None
            self._energy = energy

    def energy_head(self) -> tuple[CheapEnergyHead, float]:
        shared = getattr(self, "_energy", None)
        if shared is not None:
            return shared.head, shared.options.scale or 1.0
        return self.head, 1.0

    def loss(self, out):
        target = _require(out, keys.CHEAP_FORCES, self.name)
        pos = out[keys.POSITIONS]
        head, energy_scale = self.energy_head()
        compiled = out.get(GRADIENT, {}).get(id(head))
        if compiled is not None:  # from the compiled graph (PretrainModule._clean_pass)
            grad = compiled * energy_scale
        else:
            energy = predicted_energy(out, head, energy_scale)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=self.training)
        error = -grad - target.to(grad.dtype)
        scale = self.options.scale or 1.0
        return (error / scale).pow(2).mean(), {"mae_mev_per_a": error.abs().mean() * 1000}
