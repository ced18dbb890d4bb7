"""An ASE calculator backed by a molpre EnergyModel (energy in eV, forces in eV/Angstrom).

    atoms.calc = Predictor.load("runs:/<id>/model").calculator()
    BFGS(atoms).run(fmax=0.05)

The model runs on its own device and in its own dtype; positions are handed over in float64
and cast once by the model, so a float64 model (``Predictor.load(..., dtype="float64")``)
sees the exact positions and gives forces that agree with finite differences of its energy
to ~1e-7 eV/Angstrom; a float32 model gives float32-precision forces (~1e-4 eV/Angstrom).
Geometries the model cannot describe (no atoms, non-finite positions, periodic cells,
elements without a reference energy) raise CalculatorError instead of giving a number.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, CalculatorError, all_changes

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.predict_inputs import unsupported_elements


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
        self._check(self.atoms)
        out = self._evaluate(self.atoms)
        energy = float(out[keys.PREDICTED_ENERGY][0])
        forces = out[keys.PREDICTED_FORCES].detach().double().cpu().numpy()
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise CalculatorError("the model gave a non-finite energy or force")
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}

    def _check(self, atoms) -> None:
        if len(atoms) == 0:
            raise CalculatorError("no atoms: nothing to compute")
        if np.any(atoms.pbc):
            raise CalculatorError("periodic boundary conditions are not supported (molecules only)")
        if not np.isfinite(atoms.positions).all():
            raise CalculatorError("non-finite (NaN or inf) positions")
        problem = unsupported_elements(atoms.numbers, self._known)
        if problem:
            raise CalculatorError(problem)

    def _evaluate(self, atoms) -> dict[str, torch.Tensor]:
        """Model outputs for ``atoms`` with forces, computed on the model's device."""
        sample = atoms_to_sample(atoms, self.cutoff)
        sample[keys.POSITIONS] = torch.as_tensor(np.asarray(atoms.positions, dtype=np.float64))
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) if torch.is_tensor(v) else v
                 for k, v in collate([sample]).items()}
        with torch.no_grad():  # the model enables grad itself for the force derivative
            return self.model(batch, compute_forces=True)
