"""Equivariant building blocks: element embedding, radial basis, interaction blocks."""

from molpre.nn.embedding import ElementEmbedding
from molpre.nn.interaction import InteractionBlock, natural_irreps
from molpre.nn.radial import BesselBasis, GaussianBasis, PolynomialCutoff, RadialEmbedding

__all__ = [
    "BesselBasis",
    "ElementEmbedding",
    "GaussianBasis",
    "InteractionBlock",
    "PolynomialCutoff",
    "RadialEmbedding",
    "natural_irreps",
]
