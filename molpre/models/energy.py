"""PropertyModel: one encoder, one head per target (molpre.targets); forces by autograd.

Each head is built by its target's kind (molpre.targets.kinds) and outputs
``predicted_<name>`` (``[B]`` or ``[B, 3]``, float64, molpre units). The ``energy`` is
special where physics says so: a fixed ZBL short-range pair repulsion (molpre.nn.repulsion,
zero at bonding distances) is added to it, and forces are its gradient,
``F_i = -dE/dpos_i`` (eV/Angstrom, PREDICTED_FORCES). :class:`EnergyModel` builds the
energy-only model (the first version's signature).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import torch
from torch import nn

from molpre.data import keys
from molpre.models.compiled_forces import ForceGraph
from molpre.models.encoder import Encoder, EncoderConfig
from molpre.nn.repulsion import ZBLRepulsion
from molpre.targets import TargetSpec, get_kind, get_target
from molpre.targets.kinds import HeadDims, HeadInputs

FORMAT = "molpre.property/1"
LEGACY_FORMAT = "molpre.energy/1"


def head_dims(encoder: Encoder) -> HeadDims:
    """The widths a head reads from ``encoder``."""
    return HeadDims(encoder.feature_dim, encoder.vector_channels, encoder.config.num_elements)


def make_head(spec: TargetSpec, encoder: Encoder, *, hidden: int | None = None,
              **params: Any) -> nn.Module:
    """A fresh head for ``spec``, built by its kind; ``params`` are the kind's fitted values
    (``atomref``/``scale`` extensive, ``offset``/``scale`` intensive, ``scale`` vector: see
    ``spec.kind.fit``). ``hidden``: the readout width (default the encoder's channels)."""
    return spec.kind.make_head(head_dims(encoder), int(hidden or encoder.config.channels), **params)


def build_head(spec: TargetSpec, encoder: Encoder, config: dict[str, Any]) -> nn.Module:
    """Rebuild ``spec``'s head from its saved ``config()`` (which names its kind)."""
    kind = get_kind(config.get("kind", spec.kind))
    if kind != spec.kind:
        raise ValueError(f"head kind {kind.name!r} does not match the kind of target "
                         f"{spec.name!r} ({spec.kind.name!r})")
    return kind.head_from_config(head_dims(encoder), dict(config))


class PropertyModel(nn.Module):
    """Predict every target in ``heads`` (``{target name: head}``) from one :class:`Encoder`.

    ``elements``: atomic numbers seen in training (the Predictor refuses others); default the
    elements of the extensive heads' atomrefs. ``repulsion``: the short-range pair term added
    to the ``energy`` target (and its forces); default a :class:`ZBLRepulsion`, ``False`` for
    none. It has no parameters, so state dicts are the same with or without it; a config
    without a ``repulsion`` key (checkpoints before it existed) rebuilds with it on.
    """

    def __init__(self, encoder: Encoder, heads: dict[str, nn.Module],
                 elements: list[int] | None = None,
                 repulsion: ZBLRepulsion | bool | None = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.specs = {name: get_target(name) for name in heads}
        self.heads = nn.ModuleDict(heads)
        if repulsion is True:
            repulsion = ZBLRepulsion()
        self.repulsion = repulsion if "energy" in heads and repulsion else None
        known = {z for name, h in heads.items() for z in self._prior_elements(name, h)}
        self.elements = sorted(int(z) for z in (elements if elements is not None else known))
        self.force_graph = ForceGraph()  # compiled energy + forces, used when the encoder compiles

    def _prior_elements(self, name: str, head: nn.Module) -> set[int]:
        prior = self.specs[name].kind.head_prior(head)
        return (prior.elements or set()) if prior is not None else set()

    @property
    def targets(self) -> list[str]:
        return list(self.heads)

    @property
    def atomref(self):
        """The energy head's Atomref (AttributeError when the model has no energy head)."""
        if "energy" not in self.heads:
            raise AttributeError("this model has no energy head")
        return self.heads["energy"].atomref

    @property
    def config(self) -> dict[str, Any]:
        """A JSON-friendly dict (apart from int atomref keys) that :meth:`from_config` rebuilds."""
        return {"format": FORMAT, "encoder": self.encoder.config.to_dict(),
                "heads": {name: head.config() for name, head in self.heads.items()},
                "elements": list(self.elements),
                "repulsion": self.repulsion.config() if self.repulsion is not None else None}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PropertyModel:
        """Rebuild an (untrained) model; reads the energy-only ``molpre.energy/1`` too."""
        fmt = config.get("format", LEGACY_FORMAT)
        if fmt == LEGACY_FORMAT:
            config = _upgrade_config(config)
        elif fmt != FORMAT:
            raise ValueError(f"unsupported model format {fmt!r}, expected {FORMAT!r}")
        encoder = Encoder(EncoderConfig.from_dict(dict(config["encoder"])))
        heads = {name: build_head(get_target(name), encoder, cfg)
                 for name, cfg in config["heads"].items()}
        repulsion = ZBLRepulsion.from_config(config["repulsion"]) if "repulsion" in config else True
        return PropertyModel(encoder, heads, config.get("elements"), repulsion or False)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Also loads the energy-only state dicts of ``molpre.energy/1`` (readout.*, atomref.*)."""
        renamed = {(f"heads.energy.{k}" if k.startswith(("readout.", "atomref.")) else k): v
                   for k, v in state_dict.items()}
        return super().load_state_dict(renamed, strict=strict, assign=assign)

    def forward(self, batch: dict[str, torch.Tensor], compute_forces: bool = False) -> dict[str, torch.Tensor]:
        """Encoder outputs plus ``predicted_<target>`` for every head (float64, molpre units);
        with ``compute_forces`` and an energy head also PREDICTED_FORCES ``[N, 3]`` eV/Angstrom
        (keeping their graph whenever grad mode is on at the call)."""
        create_graph = torch.is_grad_enabled()
        compute_forces = compute_forces and "energy" in self.heads
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
            batch = {**batch, keys.POSITIONS: pos, keys.BATCH: index, keys.NUM_GRAPHS: num_graphs}
            compiled = self._compiled_forces(batch, create_graph) if compute_forces else None
            out = self.encoder(batch) if compiled is None else compiled[0]
            inputs = HeadInputs(out[keys.NODE_FEATURES], out.get(keys.NODE_VECTORS), z, pos, index,
                                num_graphs, batch.get(keys.CHARGE))
            learned_energy = None
            for name, head in self.heads.items():
                result = head(self._with_physics(name, inputs, batch))
                out[self.specs[name].output_key] = result.value
                if name == "energy":  # forces and per-atom energies are the energy's
                    learned_energy = result.learned
                    out[keys.ATOMIC_ENERGY] = result.atomic
            if compute_forces:
                grad = torch.zeros_like(pos) if compiled is None else compiled[1]
                if learned_energy.requires_grad:  # all of it eagerly, or the pair term's part
                    (eager,) = torch.autograd.grad(learned_energy.sum(), pos, create_graph=create_graph,
                                                   allow_unused=True)
                    grad = grad if eager is None else grad + eager
                out[keys.PREDICTED_FORCES] = -grad
        return out

    def _compiled_forces(self, batch: dict, create_graph: bool):
        """``(encoder outputs, dE_learned/dpos)`` from the compiled graph
        (molpre.models.compiled_forces), or None (eager encoder, a head without atomic terms,
        or a failed compile)."""
        head = self.heads["energy"]
        if not hasattr(head, "atomic_terms"):
            return None
        return self.force_graph.encode(self.encoder, head, batch, keep_graph=create_graph)

    def _with_physics(self, name: str, inputs: HeadInputs, batch: dict) -> HeadInputs:
        """``inputs`` of the ``energy`` head carry the pair repulsion it adds (physics)."""
        if name != "energy" or self.repulsion is None:
            return inputs
        repulsion = self.repulsion(batch, inputs.pos, inputs.index, inputs.num_graphs)
        return dataclasses.replace(inputs, added=repulsion)


def EnergyModel(encoder: Encoder, atomref: dict[int, float], readout_hidden: int | None = None,
                energy_scale: float = 1.0) -> PropertyModel:
    """The energy-only PropertyModel (the first version's constructor, same initial weights)."""
    head = make_head(get_target("energy"), encoder, atomref=atomref, scale=energy_scale,
                     hidden=readout_hidden)
    return PropertyModel(encoder, {"energy": head})


EnergyModel.from_config = PropertyModel.from_config  # type: ignore[attr-defined]


def _upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A ``molpre.energy/1`` config as a ``molpre.property/1`` one."""
    encoder = EncoderConfig.from_dict(dict(config["encoder"]))
    head = {"kind": get_target("energy").kind.name, "hidden": config.get("readout_hidden") or encoder.channels,
            "scale": config.get("energy_scale", 1.0), "atomref": config["atomref"]}
    return {"format": FORMAT, "encoder": config["encoder"], "heads": {"energy": head}}
