"""An ASE calculator backed by a molpre EnergyModel (energy in eV, forces in eV/Angstrom).

    atoms.calc = Predictor.load("runs:/<id>/model").calculator()
    BFGS(atoms).run(fmax=0.05)
"""

from __future__ import annotations

import torch
from ase.calculators.calculator import Calculator, CalculatorError, all_changes
from ase.data import chemical_symbols

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate


class MolpreCalculator(Calculator):
    """Energy and forces of one molecule (no periodic boundaries) from an EnergyModel."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model: torch.nn.Module, cutoff: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model.eval()
        self.cutoff = float(cutoff)
        self._known = set(model.atomref.as_dict())

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        missing = sorted({int(z) for z in self.atoms.numbers} - self._known)
        if missing:
            names = ", ".join(chemical_symbols[z] for z in missing)
            raise CalculatorError(f"unsupported element {names}: no reference energy in the model")
        batch = collate([atoms_to_sample(self.atoms, self.cutoff)])
        with torch.no_grad():  # the model enables grad itself for the force derivative
            out = self.model(batch, compute_forces=True)
        energy = float(out[keys.PREDICTED_ENERGY][0])
        self.results = {
            "energy": energy, "free_energy": energy,
            "forces": out[keys.PREDICTED_FORCES].detach().double().cpu().numpy(),
        }
