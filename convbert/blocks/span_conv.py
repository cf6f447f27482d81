"""Span-based dynamic convolution heads (ConvBERT, Jiang et al. 2020, section 3.2).

For every position and head a k-tap kernel is generated from the query times a span-aware key (a
depthwise-separable convolution of the input); the kernel, softmax-normalised over its taps, mixes the
values of the k neighbouring positions. The reference unfolds a (B, L, C, k) copy of the values; here nothing
of size k * B * L * C is made: the key convolution is ``kernels.convolution.depthwise_conv`` and the
per-position mixing ``kernels.convolution.per_position_conv`` (their speed: docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convbert.blocks.head_layout import head_layout
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.kernels.convolution import depthwise_conv, per_position_conv
from convbert.kernels.linear import Linear
from convbert.kernels.sequence_mask import SequenceMask

KERNEL_INPUTS = ("query_key", "key")


@dataclass
class SpanConvParams:
    num_heads: int | None = None
    head_size: int | None = None
    kernel_size: int = 9
    kernel_input: str = "query_key"  # "query_key": query * span-aware key (ConvBERT); "key": the key alone
    shared_query: bool = True  # use the query of a self-attention sibling (ConvBERT) instead of its own
    mask_padding: bool = False  # zero padding before each convolution: outputs independent of batch padding


class SpanConv(nn.Module):
    """(B, L, H) -> (B, L, num_heads * head_size): ConvBERT's span-based dynamic convolution heads."""

    def __init__(self, params: SpanConvParams, ctx) -> None:
        super().__init__()
        if params.kernel_size < 1 or params.kernel_size % 2 == 0:
            raise ConfigError(
                f"{ctx.path}.kernel_size: must be a positive odd number (a centred span), "
                f"got {params.kernel_size}"
            )
        if params.kernel_input not in KERNEL_INPUTS:
            raise ConfigError(
                f"{ctx.path}.kernel_input: {params.kernel_input!r} is not one of {KERNEL_INPUTS}"
            )
        hidden = ctx.hidden_size
        heads, size = head_layout(params.num_heads, params.head_size, hidden)
        self.num_heads, self.head_size, self.kernel_size = heads, size, params.kernel_size
        self.output_size = width = heads * size
        self.kernel_input = params.kernel_input
        self.shared_query = params.shared_query
        self.mask_padding = params.mask_padding
        # span-aware key: depthwise (per channel, k taps) then pointwise convolution
        self.key_depthwise = nn.Parameter(torch.empty(hidden, params.kernel_size))
        self.key_pointwise = Linear(hidden, width)
        self.query = None if params.shared_query or params.kernel_input == "key" else Linear(hidden, width)
        self.kernel = Linear(width, heads * params.kernel_size)
        # not `value`: name-keyed recipes (LoRA's target_modules=["query", "value"]) mean attention's
        self.conv_value = Linear(hidden, width)
        self.init_block_weights(ctx.initializer_range)

    def forward(
        self,
        hidden: torch.Tensor,
        mask: SequenceMask,
        output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, None]:
        batch, length, _ = hidden.shape
        k = self.kernel_size
        source = mask.zero_padding(hidden) if self.mask_padding else hidden
        span_key = self.key_pointwise(depthwise_conv(source, self.key_depthwise))  # (B, L, W)
        if self.kernel_input == "query_key":
            span_key = span_key * self._query(hidden, shared)
        kernel = self.kernel(span_key).view(batch, length, self.num_heads, k).softmax(-1)
        value = self.conv_value(hidden)
        if self.mask_padding:
            value = mask.zero_padding(value)
        value = value.view(batch, length, self.num_heads, self.head_size)
        out = per_position_conv(value, kernel)  # (B, L, heads, head_size)
        return out.reshape(batch, length, self.output_size), None

    def _query(self, hidden: torch.Tensor, shared: dict | None) -> torch.Tensor:
        if self.query is not None:
            return self.query(hidden)
        if shared is None or "query" not in shared:
            raise ConfigError(
                "span_conv with shared_query=true needs a self_attention part before it in the same mixed "
                "block; set shared_query=false to give it its own query projection"
            )
        query = shared["query"]
        if query.shape[-1] != self.output_size:
            raise ConfigError(
                f"span_conv shares a query of width {query.shape[-1]} but its own width is "
                f"{self.output_size}; "
                "give both parts the same num_heads * head_size or set shared_query=false"
            )
        return query

    def init_block_weights(self, std: float) -> None:
        nn.init.normal_(self.key_depthwise, std=std)

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_size={self.head_size}, kernel_size={self.kernel_size}"


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "mixer", "span_conv", SpanConv, SpanConvParams,
        example={"kernel_size": 3, "shared_query": False, "mask_padding": True},
    )
