"""EnergyModel: encoder + per-atom invariant readout + atomref; forces by autograd.

``E_mol = sum_i scale * MLP(h_i) + sum_i e_ref[Z_i]`` (eV), ``F_i = -dE/dpos_i`` (eV/Angstrom).
The energy is float64 (atomref precision); forces have the encoder's dtype.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from molpre.data import keys
from molpre.models.atomref import Atomref
from molpre.models.encoder import Encoder, EncoderConfig

FORMAT = "molpre.energy/1"


class EnergyModel(nn.Module):
    """Energy (and forces) of molecules from an :class:`Encoder`.

    Args:
        encoder: the (possibly pretrained) encoder.
        atomref: ``{Z: reference energy eV}``, e.g. from molpre.data.atomref.fit_atomref.
        readout_hidden: width of the per-atom readout MLP (default: encoder channels).
        energy_scale: per-atom outputs are multiplied by it (eV); a good value is the std of
            the per-atom residual energy after the atomref fit.
    """

    def __init__(
        self,
        encoder: Encoder,
        atomref: dict[int, float],
        readout_hidden: int | None = None,
        energy_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.atomref = Atomref(atomref, encoder.config.num_elements)
        hidden = int(readout_hidden or encoder.config.channels)
        self.readout = nn.Sequential(
            nn.Linear(encoder.feature_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )
        self.readout_hidden = hidden
        self.energy_scale = float(energy_scale)

    @property
    def config(self) -> dict[str, Any]:
        """A dict (JSON-friendly apart from int atomref keys) that :meth:`from_config` rebuilds."""
        return {
            "format": FORMAT,
            "encoder": self.encoder.config.to_dict(),
            "atomref": self.atomref.as_dict(),
            "readout_hidden": self.readout_hidden,
            "energy_scale": self.energy_scale,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EnergyModel:
        """Rebuild an (untrained) model from :attr:`config`; atomref keys may be strings."""
        fmt = config.get("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"unsupported energy model format {fmt!r}, expected {FORMAT!r}")
        encoder = Encoder(EncoderConfig.from_dict(dict(config["encoder"])))
        atomref = {int(z): float(e) for z, e in config["atomref"].items()}
        return cls(encoder, atomref, config.get("readout_hidden"), config.get("energy_scale", 1.0))

    def forward(self, batch: dict[str, torch.Tensor], compute_forces: bool = False) -> dict[str, torch.Tensor]:
        """Add ATOMIC_ENERGY [N], PREDICTED_ENERGY [B] (float64 eV) and, if asked,
        PREDICTED_FORCES [N, 3] eV/Angstrom to the encoder outputs.

        Forces keep their graph (for a force loss) whenever grad mode is on at the call.
        """
        create_graph = torch.is_grad_enabled()
        dtype = next(self.encoder.parameters()).dtype
        pos = batch[keys.POSITIONS].to(dtype)
        if compute_forces and not pos.requires_grad:
            pos = pos.detach().requires_grad_(True)
        z = batch[keys.ATOMIC_NUMBERS]
        index = batch.get(keys.BATCH)
        if index is None:
            index = torch.zeros_like(z)
        num_graphs = int(batch.get(keys.NUM_GRAPHS, int(index.max()) + 1 if index.numel() else 0))
        grad_ctx = torch.enable_grad() if compute_forces else contextlib.nullcontext()
        with grad_ctx:
            out = self.encoder({**batch, keys.POSITIONS: pos, keys.BATCH: index, keys.NUM_GRAPHS: num_graphs})
            atomic = self.readout(out[keys.NODE_FEATURES]).squeeze(-1) * self.energy_scale
            learned = torch.zeros(num_graphs, dtype=atomic.dtype, device=atomic.device)
            learned = learned.index_add(0, index, atomic)
            if compute_forces:
                (grad,) = torch.autograd.grad(
                    learned.sum(), pos, create_graph=create_graph, allow_unused=True
                )
                out[keys.PREDICTED_FORCES] = -grad if grad is not None else torch.zeros_like(pos)
        out[keys.ATOMIC_ENERGY] = atomic
        out[keys.PREDICTED_ENERGY] = learned.double() + self.atomref(z, index, num_graphs)
        return out
