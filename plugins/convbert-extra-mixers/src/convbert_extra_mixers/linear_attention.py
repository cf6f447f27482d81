"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax replaced by a kernel.

sim(q, k) = phi(q) . phi(k) with phi = elu + 1 (positive), so attention is phi(Q) (phi(K)^T V) normalised by
phi(Q) sum(phi(K)): O(L) time and memory in the sequence length instead of O(L^2). Padded keys are zeroed
in feature space, so they add nothing to either sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from convbert.plugin import SequenceMask, head_layout
from torch import nn
from torch.nn import functional as F


@dataclass
class LinearAttentionParams:
    num_heads: int | None = None  # None: filled by the parent (mixed) or hidden_size // head_size, else 1
    head_size: int | None = None  # None: hidden_size // num_heads
    eps: float = 1e-6  # keeps the normaliser away from zero


class LinearAttention(nn.Module):
    """(B, L, H) -> (B, L, num_heads * head_size), non-causal; no probabilities to return."""

    def __init__(self, params: LinearAttentionParams, ctx) -> None:
        super().__init__()
        hidden = ctx.hidden_size
        heads, size = head_layout(params.num_heads, params.head_size, hidden)
        self.num_heads, self.head_size, self.eps = heads, size, params.eps
        self.output_size = heads * size
        self.query = nn.Linear(hidden, self.output_size)
        self.key = nn.Linear(hidden, self.output_size)
        self.value = nn.Linear(hidden, self.output_size)

    def forward(
        self, hidden: torch.Tensor, mask: SequenceMask, output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, None]:
        batch, length, _ = hidden.shape
        shape = (batch, length, self.num_heads, self.head_size)
        q = F.elu(self.query(hidden).view(shape)) + 1
        k = mask.zero_padding(F.elu(self.key(hidden).view(shape)) + 1)
        v = self.value(hidden).view(shape)
        kv = torch.einsum("blhd,blhe->bhde", k, v)  # (B, heads, d, d): the whole sequence summarised
        norm = torch.einsum("blhd,bhd->blh", q, k.sum(1)) + self.eps
        out = torch.einsum("blhd,bhde->blhe", q, kv) / norm[..., None]
        return out.reshape(batch, length, self.output_size), None

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_size={self.head_size}"
