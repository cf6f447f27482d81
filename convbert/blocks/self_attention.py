"""Multi-head self-attention heads through ``scaled_dot_product_attention``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from convbert.blocks.masking import SequenceMask
from convbert.hookspecs import hookimpl


@dataclass
class SelfAttentionParams:
    num_heads: Optional[int] = None  # None: filled by the parent (mixed) or hidden_size // head_size
    head_size: Optional[int] = None  # None: hidden_size // num_heads
    dropout: float = 0.1  # on the attention probabilities, as BERT
    share_query: bool = True  # publish the query projection for a span-conv sibling (ConvBERT shares it)


class SelfAttention(nn.Module):
    """(B, L, H) -> (B, L, num_heads * head_size). Probabilities are materialised only when asked for."""

    def __init__(self, params: SelfAttentionParams, ctx) -> None:
        super().__init__()
        hidden = ctx.hidden_size
        heads = params.num_heads or (hidden // params.head_size if params.head_size else 1)
        size = params.head_size or hidden // heads
        self.num_heads, self.head_size = heads, size
        self.output_size = heads * size
        self.dropout = params.dropout
        self.share_query = params.share_query
        self.query = nn.Linear(hidden, self.output_size)
        self.key = nn.Linear(hidden, self.output_size)
        self.value = nn.Linear(hidden, self.output_size)

    def forward(
        self, hidden: torch.Tensor, mask: SequenceMask, output_attentions: bool = False, shared: dict | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden.shape
        query = self.query(hidden)
        if shared is not None and self.share_query:
            shared["query"] = query
        q = query.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)
        k = self.key(hidden).view(batch, length, self.num_heads, self.head_size).transpose(1, 2)
        v = self.value(hidden).view(batch, length, self.num_heads, self.head_size).transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        additive = None if mask.additive is None else mask.additive.to(q.dtype)
        if output_attentions:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size)
            if additive is not None:
                scores = scores + additive
            probs = F.dropout(scores.softmax(-1), dropout, self.training)
            context = probs @ v
        else:
            probs = None
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=dropout)
        return context.transpose(1, 2).reshape(batch, length, self.output_size), probs


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("mixer", "self_attention", SelfAttention, SelfAttentionParams)
