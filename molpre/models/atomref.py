"""Per-element reference energies as a torch module (the "atomref" prior, as in TorchMD-Net).

Built from the ``{Z: energy_eV}`` dict of :func:`molpre.data.atomref.fit_atomref`. The table
is kept in float64 whatever dtype the rest of the model uses: total energies of molecules are
~1e4 eV, where float32 would lose meV.
"""

from __future__ import annotations

import torch
from torch import nn

from molpre.data import keys


class Atomref(nn.Module):
    """``energies[Z]`` buffer ``[num_elements]`` float64 eV; unknown elements are 0 and flagged."""

    def __init__(self, atomref: dict[int, float], num_elements: int = keys.NUM_ELEMENT_TOKENS) -> None:
        super().__init__()
        table = torch.zeros(num_elements, dtype=torch.float64)
        known = torch.zeros(num_elements, dtype=torch.bool)
        for z, energy in atomref.items():
            z = int(z)
            if not 0 < z < num_elements:
                raise ValueError(f"atomref element Z={z} is outside 1..{num_elements - 1}")
            table[z] = float(energy)
            known[z] = True
        self.register_buffer("energies", table)
        self.register_buffer("known", known)

    def _apply(self, fn, recurse=True):  # keep float64 on .float()/.to(dtype); follow devices
        table = self.energies
        super()._apply(fn, recurse)
        self.energies = table.to(device=self.energies.device, dtype=torch.float64)
        return self

    def as_dict(self) -> dict[int, float]:
        """The ``{Z: energy_eV}`` dict this module was built from."""
        zs = torch.nonzero(self.known).flatten().tolist()
        return {int(z): float(self.energies[z]) for z in zs}

    def missing(self, z: torch.Tensor) -> list[int]:
        """Elements in ``z`` (ignoring the mask token 0) that have no reference energy."""
        z = z.to(self.known.device)
        unknown = torch.unique(z[(z > 0) & ~self.known[z.clamp(min=0)]])
        return [int(v) for v in unknown.tolist()]

    def forward(self, z: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """``z [N]``, ``batch [N]`` -> ``[B]`` float64 eV: sum of reference energies per molecule."""
        per_atom = self.energies[z]
        return torch.zeros(num_graphs, dtype=torch.float64, device=per_atom.device).index_add(
            0, batch, per_atom
        )
