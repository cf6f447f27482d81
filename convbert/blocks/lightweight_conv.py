"""Lightweight convolution (Wu et al. 2019, "Pay Less Attention with Lightweight and Dynamic Convolutions").

A static kernel of k taps per head, softmax-normalised over the taps and shared by every channel of the head:
num_heads * k parameters instead of width * k, and the output is a weighted average of neighbouring values,
as an attention head's is. A variant of ConvBERT's ablation (table 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.blocks.depthwise_conv import CONTRACT_EXAMPLE, DepthwiseConvParams, ValueConv
from convbert.hookspecs import hookimpl


@dataclass
class LightweightConvParams(DepthwiseConvParams):
    weight_dropout: float = 0.0  # DropConnect on the normalised kernel during training (0.1 in Wu et al.)


class LightweightConv(ValueConv):
    """(B, L, H) -> (B, L, num_heads * head_size) with one softmax-normalised k-tap kernel per head."""

    def __init__(self, params: LightweightConvParams, ctx) -> None:
        super().__init__(params, ctx)
        self.weight_dropout = params.weight_dropout
        self.weight = nn.Parameter(torch.empty(self.num_heads, self.kernel_size))
        self.init_block_weights(ctx.initializer_range)

    def kernel(self, hidden: torch.Tensor) -> torch.Tensor:
        kernel = F.dropout(self.weight.softmax(-1), self.weight_dropout, self.training)
        return kernel[:, None, :]  # (heads, 1, k): shared by the channels of a head

    def init_block_weights(self, std: float) -> None:
        nn.init.normal_(self.weight, std=std)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "mixer", "lightweight_conv", LightweightConv, LightweightConvParams, example=CONTRACT_EXAMPLE
    )
