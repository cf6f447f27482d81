"""Plain depthwise convolution of projected values: the ``conv`` mixer of ConvBERT's ablation (table 3).

It is also the common ground of the paper's convolution variants: every one of them projects the input to
values, splits them into heads and mixes the k neighbouring positions of each channel with a kernel. They
differ only in where the kernel comes from, so ``ValueConv`` does the rest and a subclass supplies
``kernel(hidden)``: here a static per-channel kernel (width x k), no softmax; ``lightweight_conv`` shares a
softmax-normalised kernel within each head; ``dynamic_conv`` generates it from the current token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convbert.blocks.head_layout import head_layout
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.kernels.convolution import shifted_taps
from convbert.kernels.sequence_mask import SequenceMask

# What the contract suite builds: a short kernel, and padding masked so that the mask clause can hold.
CONTRACT_EXAMPLE = {"kernel_size": 3, "mask_padding": True}


@dataclass
class DepthwiseConvParams:
    num_heads: int | None = None  # None: filled by the parent (mixed) or hidden_size // head_size, else 1
    head_size: int | None = None  # None: hidden_size // num_heads
    kernel_size: int = 9
    # False: padded positions feed the convolution, as the reference span conv does; True: they are zeroed,
    # so a sentence's output does not depend on what it is batched with.
    mask_padding: bool = False


class ValueConv(nn.Module):
    """(B, L, H) -> (B, L, num_heads * head_size): values mixed over k positions by ``self.kernel(hidden)``.

    ``kernel`` returns weights broadcastable to (B, L, heads, head_size, k); ``shifted_taps`` applies them
    without a k-fold copy of the values and with zeros beyond the sequence ends.
    """

    def __init__(self, params: DepthwiseConvParams, ctx) -> None:
        super().__init__()
        if params.kernel_size < 1 or params.kernel_size % 2 == 0:
            raise ConfigError(
                f"{ctx.path}.kernel_size: must be a positive odd number (a centred span), "
                f"got {params.kernel_size}"
            )
        hidden = ctx.hidden_size
        heads, size = head_layout(params.num_heads, params.head_size, hidden)
        if heads < 1 or size < 1:
            raise ConfigError(f"{ctx.path}: num_heads ({heads}) and head_size ({size}) must be >= 1")
        self.num_heads, self.head_size, self.kernel_size = heads, size, params.kernel_size
        self.output_size = heads * size
        self.mask_padding = params.mask_padding
        # not `value`: name-keyed recipes (LoRA's target_modules=["query", "value"]) mean attention's
        self.conv_value = nn.Linear(hidden, self.output_size)

    def kernel(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        hidden: torch.Tensor,
        mask: SequenceMask,
        output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, None]:
        batch, length, _ = hidden.shape
        value = self.conv_value(hidden)
        if self.mask_padding:
            value = mask.zero_padding(value)
        value = value.view(batch, length, self.num_heads, self.head_size)
        out = shifted_taps(value, self.kernel(hidden).to(value.dtype))  # (B, L, heads, head_size)
        return out.reshape(batch, length, self.output_size), None

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_size={self.head_size}, kernel_size={self.kernel_size}"


class DepthwiseConv(ValueConv):
    """A static kernel per channel, not normalised: the plain convolution baseline of the ablation."""

    def __init__(self, params: DepthwiseConvParams, ctx) -> None:
        super().__init__(params, ctx)
        self.weight = nn.Parameter(torch.empty(self.num_heads, self.head_size, self.kernel_size))
        self.init_block_weights(ctx.initializer_range)

    def kernel(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.weight  # (heads, head_size, k)

    def init_block_weights(self, std: float) -> None:
        nn.init.normal_(self.weight, std=std)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("mixer", "conv", DepthwiseConv, DepthwiseConvParams, example=CONTRACT_EXAMPLE)
