"""Element embeddings: one row per element token (index 0 = mask token, index Z = element Z)."""

from __future__ import annotations

import torch
from torch import nn

from molpre.data import keys


class ElementEmbedding(nn.Module):
    """Map atomic numbers to invariant node features and to a small per-element attribute.

    The features start the message passing (``[N, channels]``, the ``channels x 0e`` irreps);
    the attribute (``[N, attr_dim]``) makes each block's self-interaction element dependent,
    like NequIP/MACE's one-hot species attribute but learned, so 119 tokens stay cheap.
    """

    def __init__(self, channels: int, attr_dim: int, num_tokens: int = keys.NUM_ELEMENT_TOKENS) -> None:
        super().__init__()
        self.num_tokens = int(num_tokens)
        self.features = nn.Embedding(num_tokens, channels)
        self.attributes = nn.Embedding(num_tokens, attr_dim) if attr_dim > 0 else None
        nn.init.normal_(self.features.weight, std=1.0)
        if self.attributes is not None:
            nn.init.normal_(self.attributes.weight, std=1.0)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``z: [N]`` long (0 = masked) -> ``(features [N, channels], attributes [N, attr_dim] | None)``."""
        if z.numel() and (int(z.min()) < 0 or int(z.max()) >= self.num_tokens):
            raise ValueError(
                f"atomic numbers must lie in [0, {self.num_tokens - 1}], got "
                f"[{int(z.min())}, {int(z.max())}]"
            )
        attr = self.attributes(z) if self.attributes is not None else None
        return self.features(z), attr
