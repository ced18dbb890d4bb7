"""The molpre encoder: an E(3)-equivariant message-passing network on e3nn.

``Encoder(config)(batch)`` reads POSITIONS [N, 3] (Angstrom), ATOMIC_NUMBERS [N] (0 = mask
token), EDGE_INDEX [2, E] and BATCH [N], recomputes edge vectors from the positions (so
forces follow by autograd) and adds:

* NODE_FEATURES [N, F]: invariant per-atom features, the ``channels`` scalars of *every*
  block concatenated (F = channels * num_layers), a multi-layer readout as in MACE.
* NODE_VECTORS [N, C, 3]: the ``channels`` l=1 features of the last block, Cartesian x, y, z.
* NODE_IRREPS [N, dim(irreps_out)]: all features of the last block, e3nn layout.
* GRAPH_EMBEDDING [B, F]: mean of NODE_FEATURES over each molecule's atoms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from e3nn import o3
from torch import nn

from molpre.config import from_dict
from molpre.data import keys
from molpre.data.graph import edges_paired
from molpre.nn import ElementEmbedding, InteractionBlock, RadialEmbedding, natural_irreps
from molpre.nn.compiled import BlockRunner
from molpre.nn.segment import gather_rows

FORMAT = "molpre.encoder/1"


@dataclass(frozen=True)
class EncoderConfig:
    """Hyperparameters that fully define an Encoder (saved with every checkpoint).

    channels: multiplicity of every irrep; lmax: max angular order of features and edge
    harmonics (>= 1); cutoff: neighbour radius, Angstrom; radial_mlp_width/layers: the MLP
    from radial basis to tensor-product weights; avg_num_neighbors: normalises neighbour sums;
    attr_dim: size of the learned element attribute of the self-interaction (0 = plain linear);
    product: each block adds a channel-wise product of its aggregated neighbourhood with itself.
    """

    channels: int = 32
    lmax: int = 1
    num_layers: int = 2
    cutoff: float = 5.0
    num_radial_basis: int = 8
    radial_basis: str = "bessel"
    radial_mlp_width: int = 64
    radial_mlp_layers: int = 2
    cutoff_p: int = 6
    avg_num_neighbors: float = 12.0
    attr_dim: int = 8
    product: bool = True
    num_elements: int = keys.NUM_ELEMENT_TOKENS

    def __post_init__(self) -> None:
        if self.lmax < 1:
            raise ValueError("lmax must be >= 1 (the encoder outputs l=1 vectors)")
        if self.channels < 1 or self.num_layers < 1:
            raise ValueError("channels and num_layers must be >= 1")
        if self.cutoff <= 0 or self.avg_num_neighbors <= 0:
            raise ValueError("cutoff and avg_num_neighbors must be > 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        """Build from a dict: unknown keys and wrong types are ConfigErrors naming the key."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cartesian_from_e3nn_l1() -> torch.Tensor:
    """Matrix ``M`` with ``v_cartesian = v_e3nn @ M`` for e3nn's l=1 component order."""
    basis = o3.spherical_harmonics(1, torch.eye(3, dtype=torch.float64), normalize=False)
    return torch.linalg.inv(basis / basis.abs().max())


def scatter_mean(x: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean of rows ``x [N, F]`` per group ``index [N]`` -> ``[num_groups, F]`` (0 for empty groups)."""
    total = torch.zeros(num_groups, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, index, x)
    count = torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add(
        0, index, torch.ones_like(index, dtype=x.dtype)
    )
    return total / count.clamp(min=1.0).unsqueeze(-1)


class Encoder(nn.Module):
    """Equivariant encoder; see the module docstring for inputs and outputs."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.embedding = ElementEmbedding(c, config.attr_dim, config.num_elements)
        self.radial = RadialEmbedding(
            config.cutoff, config.num_radial_basis, config.radial_basis, config.cutoff_p
        )
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.lmax)
        self.spherical_harmonics = o3.SphericalHarmonics(
            self.irreps_sh, normalize=True, normalization="component"
        )
        hidden = natural_irreps(c, config.lmax)
        irreps = o3.Irreps(f"{c}x0e")
        blocks = []
        for _ in range(config.num_layers):
            blocks.append(
                InteractionBlock(
                    irreps, hidden, self.irreps_sh, config.attr_dim, config.num_radial_basis,
                    config.radial_mlp_width, config.radial_mlp_layers, config.avg_num_neighbors,
                    config.product,
                )
            )
            irreps = hidden
        self.blocks = nn.ModuleList(blocks)
        self.irreps_out = hidden
        self._vector_slice = hidden.slices()[1]
        self.register_buffer("_l1_to_xyz", _cartesian_from_e3nn_l1(), persistent=False)
        self.runner = BlockRunner()  # eager unless compile_blocks() or MOLPRE_COMPILE=1

    def compile_blocks(self, enabled: bool = True) -> Encoder:
        """Run the blocks through ``torch.compile`` where safe (see molpre.nn.compiled)."""
        self.runner.enable(enabled)
        return self

    def _run_blocks(self, pos: torch.Tensor, h: torch.Tensor, attr: torch.Tensor | None,
                    edge_index: torch.Tensor, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, F], last block's h [N, dim(irreps_out)])`` from positions ``[N, 3]``
        (Angstrom) and the element embeddings (the part that ``compile_blocks`` compiles).
        ``paired``: ``edge_index`` holds both directions of each pair side by side
        (:func:`molpre.data.graph.edges_paired`), so radial terms are computed once a pair."""
        edge_sh, edge_radial = self.edge_features(pos, edge_index, paired)
        scalars = []
        for block in self.blocks:
            h = block(h, attr, edge_sh, edge_radial, edge_index, paired)
            scalars.append(h[:, : self.config.channels])
        return torch.cat(scalars, dim=-1), h

    @property
    def feature_dim(self) -> int:
        """F, the width of NODE_FEATURES and GRAPH_EMBEDDING."""
        return self.config.channels * self.config.num_layers

    @property
    def vector_channels(self) -> int:
        """C, the number of l=1 channels in NODE_VECTORS."""
        return self.config.channels

    def edge_features(self, pos: torch.Tensor, edge_index: torch.Tensor,
                      paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Spherical harmonics ``[E, dim(sh)]`` of each edge and the radial basis
        ``[E, num_basis]`` of each edge, or ``[E / 2, num_basis]`` of each pair when ``paired``
        (the two directions of a pair have the same length, exactly: ``a - b == -(b - a)``)."""
        vec = gather_rows(pos, edge_index[0]) - gather_rows(pos, edge_index[1])
        r = (vec[0::2] if paired else vec).norm(dim=-1)
        radial, _ = self.radial(r)
        return self.spherical_harmonics(vec), radial

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return a new dict: ``batch`` plus the four output keys (see module docstring)."""
        dtype = next(self.parameters()).dtype
        pos = batch[keys.POSITIONS].to(dtype)
        h, attr = self.embed(batch[keys.ATOMIC_NUMBERS], dtype)
        edge_index = batch[keys.EDGE_INDEX]
        features, h = self.runner(self._run_blocks, pos, h, attr, edge_index, edges_paired(edge_index),
                                  needs_double_backward=torch.is_grad_enabled() and pos.requires_grad)
        return self.assemble(batch, features, h)

    def embed(self, z: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Element embeddings ``[N, C]`` and attributes ``[N, A]`` (or None) of ``z [N]``."""
        h, attr = self.embedding(z)
        return h.to(dtype), attr.to(dtype) if attr is not None else None

    def assemble(self, batch: dict[str, torch.Tensor], features: torch.Tensor,
                 h: torch.Tensor) -> dict[str, torch.Tensor]:
        """``batch`` plus the output keys, from the blocks' ``features [N, F]`` and last
        ``h [N, dim(irreps_out)]``."""
        index = batch.get(keys.BATCH)
        if index is None:
            index = torch.zeros_like(batch[keys.ATOMIC_NUMBERS])
        num_graphs = int(batch.get(keys.NUM_GRAPHS, int(index.max()) + 1 if index.numel() else 0))
        vectors = h[:, self._vector_slice].reshape(h.shape[0], self.config.channels, 3)
        vectors = vectors @ self._l1_to_xyz.to(h.dtype)
        out = dict(batch)
        out[keys.NODE_FEATURES] = features
        out[keys.NODE_VECTORS] = vectors
        out[keys.NODE_IRREPS] = h
        out[keys.GRAPH_EMBEDDING] = scatter_mean(features, index, num_graphs)
        return out


def save_encoder(encoder: Encoder, path: str | Path, meta: dict[str, Any] | None = None,
                 heads: dict[str, dict] | None = None) -> None:
    """Write an encoder checkpoint (atomically): see molpre.models.checkpoint.save_encoder."""
    from molpre.models import checkpoint

    checkpoint.save_encoder(encoder, path, meta, heads)


def load_encoder(path: str | Path) -> Encoder:
    """Rebuild an encoder checkpoint: see molpre.models.checkpoint.load_encoder."""
    from molpre.models import checkpoint

    return checkpoint.load_encoder(path)
