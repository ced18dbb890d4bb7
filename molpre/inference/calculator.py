"""An ASE calculator backed by a molpre EnergyModel (energy in eV, forces in eV/Angstrom).

    atoms.calc = Predictor.load("runs:/<id>/model").calculator()
    BFGS(atoms).run(fmax=0.05)

The model runs on its own device and in its own dtype; positions are handed over in float64
and cast once by the model, so a float64 model (``Predictor.load(..., dtype="float64")``)
sees the exact positions and gives forces that agree with finite differences of its energy
to ~1e-7 eV/Angstrom; a float32 model gives float32-precision forces (~1e-4 eV/Angstrom).
Geometries the model cannot describe raise CalculatorError instead of giving a number: the
same domain checks as ``Predictor.predict`` (molpre.inference.inputs.atoms_problem: no atoms,
more than ``max_atoms`` atoms, periodic cells, non-finite positions, elements without a
reference energy), so a 500-atom random carbon cloud is an error, not -2763 eV. Overlapping
atoms (closer than 0.5 Angstrom), an error row for ``Predictor.predict``, are computed but
out of domain: an optimizer or MD run may pass through such a geometry (the repulsive prior
pushes it out), so the step warns (:class:`OutOfDomainWarning`) and ``results`` holds
``ood`` True and ``ood_reason``.

A delta model (molpre.delta) adds its cheap level, computed here for every geometry (energy
and forces: GFN2-xTB takes milliseconds, a PySCF level seconds), to the model's outputs: the
energy is ``E_model + s * (E_cheap - offsets)`` and the forces ``F_model + s * F_cheap``.

With a committee model (``molpre finetune --ensemble K``) the energy and forces are the
members' means and ``results`` also holds ``energy_std`` (eV), ``forces_std`` ([N, 3]
eV/Angstrom, per component), ``energies`` ([K] eV, one per member), ``ood`` (bool) and
``ood_reason``: the calibrated domain check of molpre.models.committee.Domain (energy spread
per atom above the validation quantile, or more atoms than any training molecule). An
out-of-domain geometry also raises an :class:`OutOfDomainWarning` (shown once per call site
of the user's code, Python's default warning filter).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, CalculatorError, all_changes

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.inference.inputs import MAX_ATOMS, atoms_problem, unsupported_elements
from molpre.models.committee import MEMBERS, Committee, Domain

#: One fixed message, so the default warning filter shows it once per call site.
OOD_MESSAGE = ("molpre: geometry out of the committee's domain (spread above validation, or "
               "larger than any training molecule); see calc.results['ood_reason']")
OVERLAP_MESSAGE = ("molpre: overlapping atoms, out of the model's domain (Predictor.predict "
                   "would give an error row); see calc.results['ood_reason']")


class OutOfDomainWarning(UserWarning):
    """The committee's spread (or the molecule's size) is beyond what training covered."""


class MolpreCalculator(Calculator):
    """Energy and forces of one molecule (no periodic boundaries) from an EnergyModel."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model: torch.nn.Module, cutoff: float, domain: Domain | None = None,
                 max_atoms: int = MAX_ATOMS, delta=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model.eval()
        self.cutoff = float(cutoff)
        self.domain = domain
        self.max_atoms = int(max_atoms)
        self.delta = delta
        self._known = set(model.atomref.as_dict())
        if isinstance(model, Committee):
            self.implemented_properties = [*type(self).implemented_properties,
                                           "energy_std", "forces_std"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        overlap = self._check(self.atoms)
        out = self._evaluate(self.atoms)
        energy = float(out[keys.PREDICTED_ENERGY][0].detach())
        forces = out[keys.PREDICTED_FORCES].detach().double().cpu().numpy()
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise CalculatorError("the model gave a non-finite energy or force")
        if self.delta is not None:
            energy, forces = self._add_cheap_level(energy, forces)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if isinstance(self.model, Committee):
            self.results.update(self._spread(out, len(self.atoms)))
        if overlap:
            warnings.warn(OVERLAP_MESSAGE, OutOfDomainWarning, stacklevel=_caller_level())
            reason = "; ".join(r for r in (overlap, self.results.get("ood_reason")) if r)
            self.results.update(ood=True, ood_reason=reason)

    def _spread(self, out: dict[str, torch.Tensor], n_atoms: int) -> dict:
        """Committee results: member energies, spreads and the domain check (warns)."""
        energies = out[keys.PREDICTED_ENERGY + MEMBERS][:, 0].detach().double().cpu().numpy()
        forces = out[keys.PREDICTED_FORCES + MEMBERS].detach().double().cpu().numpy()
        energy_std = float(energies.std())
        reason = self.domain.reason({"energy_ev": energy_std}, n_atoms) if self.domain else ""
        if reason:
            warnings.warn(OOD_MESSAGE, OutOfDomainWarning, stacklevel=_caller_level())
        return {"energy_std": energy_std, "forces_std": forces.std(axis=0), "energies": energies,
                "ood": bool(reason), "ood_reason": reason}

    def _add_cheap_level(self, energy: float, forces: np.ndarray) -> tuple[float, np.ndarray]:
        """A delta model's energy and forces plus its cheap level at this geometry."""
        from molpre.qc.engines import compute_many

        result = compute_many([self.atoms], self.delta.level_of_theory, forces=True)[0]
        if not result.ok:
            raise CalculatorError(f"cheap level {self.delta.level} failed: {result.reason}")
        return (self.delta.add(energy, self.atoms.numbers, result.energy),
                self.delta.add_forces(forces, result.forces))

    def _check(self, atoms) -> str:
        """The Predictor's domain checks (one source of truth: atoms_problem); returns the
        reason when the only problem is overlapping atoms (computed, out of domain)."""
        problem = atoms_problem(atoms, self._known, self.max_atoms)
        if problem and problem.startswith("overlapping atoms"):
            problem = unsupported_elements(atoms.numbers, self._known) or problem
            if problem.startswith("overlapping atoms"):
                return problem
        if problem:
            raise CalculatorError(problem)
        return ""

    def _evaluate(self, atoms) -> dict[str, torch.Tensor]:
        """Model outputs for ``atoms`` with forces, computed on the model's device."""
        sample = atoms_to_sample(atoms, self.cutoff)
        sample[keys.POSITIONS] = torch.as_tensor(np.asarray(atoms.positions, dtype=np.float64))
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) if torch.is_tensor(v) else v
                 for k, v in collate([sample]).items()}
        with torch.no_grad():  # the model enables grad itself for the force derivative
            return self.model(batch, compute_forces=True)


_LIBRARIES = tuple(os.path.dirname(m.__file__) + os.sep for m in (sys.modules["ase"], sys.modules["molpre"]))


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside molpre and ASE (the user's call site)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame, level = frame.f_back, level + 1
    return level
