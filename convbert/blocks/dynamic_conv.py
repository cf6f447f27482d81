"""Dynamic convolution (Wu et al. 2019, "Pay Less Attention with Lightweight and Dynamic Convolutions").

The k-tap kernel of each head is generated at every position from the current token alone (a linear map
hidden -> heads * k, softmax over the taps) and shared by the channels of the head. ConvBERT's span-based
convolution generates it from the query and a span-aware key instead; this is the "dynamic conv" row of the
paper's ablation (table 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.blocks.depthwise_conv import CONTRACT_EXAMPLE, DepthwiseConvParams, ValueConv
from convbert.hookspecs import hookimpl


@dataclass
class DynamicConvParams(DepthwiseConvParams):
    weight_dropout: float = 0.0  # DropConnect on the normalised kernels during training (0.1 in Wu et al.)


class DynamicConv(ValueConv):
    """(B, L, H) -> (B, L, num_heads * head_size); each position's kernel comes from that token alone."""

    def __init__(self, params: DynamicConvParams, ctx) -> None:
        super().__init__(params, ctx)
        self.weight_dropout = params.weight_dropout
        self.kernel_proj = nn.Linear(ctx.hidden_size, self.num_heads * self.kernel_size)

    def kernel(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, _ = hidden.shape
        kernel = self.kernel_proj(hidden).view(batch, length, self.num_heads, 1, self.kernel_size).softmax(-1)
        return F.dropout(kernel, self.weight_dropout, self.training)  # (B, L, heads, 1, k)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("mixer", "dynamic_conv", DynamicConv, DynamicConvParams, example=CONTRACT_EXAMPLE)
