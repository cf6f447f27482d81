"""Span-based dynamic convolution heads (ConvBERT, Jiang et al. 2020, section 3.2).

For every position and head a k-tap kernel is generated from the query times a span-aware key (a
depthwise-separable convolution of the input); the kernel, softmax-normalised over its taps, mixes the
values of the k neighbouring positions. The reference unfolds a (B, L, C, k) copy of the values; here
nothing of size k * B * L * C is ever made:

- the depthwise key convolution is one ``conv2d`` on a channels-last view of the (B, L, C) input: no
  transpose copy in or out, one pass (25x faster than accumulating k shifted taps);
- the dynamic convolution is an autograd function that accumulates the k shifted taps in place
  (``addcmul_``) and saves only the values and the kernel; backward takes the kernel's gradient for all
  taps at once from a window view (3x faster than autograd over the taps, 15x than unfold + matmul).
  Under ``torch.compile`` the plain shifted taps are used instead: inductor fuses them into one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from convbert.blocks.head_layout import head_layout
from convbert.blocks.linear import Linear
from convbert.blocks.masking import SequenceMask
from convbert.capture import capturing
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl

KERNEL_INPUTS = ("query_key", "key")


@dataclass
class SpanConvParams:
    num_heads: int | None = None
    head_size: int | None = None
    kernel_size: int = 9
    kernel_input: str = "query_key"  # "query_key": query * span-aware key (ConvBERT); "key": the key alone
    shared_query: bool = True  # use the query of a self-attention sibling (ConvBERT) instead of its own
    mask_padding: bool = False  # zero padding before each convolution: outputs independent of batch padding


def shifted_taps(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """out[:, l] = sum_j weights[..., j] * x[:, l + j - k // 2], zero outside the sequence.

    ``x``: (B, L, ...); ``weights``: broadcastable to x with a trailing tap axis of size k. No (B, L, ..., k)
    copy is made: each tap is a shifted view of one padded tensor. The reference formulation (and the one
    inductor fuses); eager code uses ``depthwise_conv`` and ``dynamic_conv``.
    """
    k = weights.shape[-1]
    pad = k // 2
    length = x.shape[1]
    padded = F.pad(x.movedim(1, -1), (pad, pad)).movedim(-1, 1)  # (B, L + k - 1, ...)
    out = padded[:, 0:length] * weights[..., 0]
    for j in range(1, k):
        out = out + padded[:, j : j + length] * weights[..., j]
    return out


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, L, C) x (C, k) -> (B, L, C): ``shifted_taps(x, weight)`` as one channels-last ``conv2d``.

    ``x.transpose(1, 2).unsqueeze(2)`` is a (B, C, 1, L) tensor in channels-last layout, which oneDNN (and
    cuDNN) convolve without a copy and answer in the same layout, i.e. a contiguous (B, L, C) again.
    """
    channels, k = weight.shape
    # k multiply-adds per element: no work for low precision to save, and oneDNN's bf16 depthwise backward is
    # twice as slow as fp32's, so under autocast it stays in the input's dtype
    with torch.autocast(x.device.type, enabled=False):
        out = F.conv2d(x.transpose(1, 2).unsqueeze(2), weight.to(x.dtype).view(channels, 1, 1, k),
                       padding=(0, k // 2), groups=channels)
    return out.squeeze(2).transpose(1, 2)


def _tap_range(shift: int, length: int) -> tuple[int, int]:
    """Output rows [lo, hi) that read input rows [lo + shift, hi + shift) inside the sequence."""
    return max(0, -shift), length - max(0, shift)


class _DynamicConv(torch.autograd.Function):
    """out[:, l, h] = sum_j kernel[:, l, h, j] * value[:, l + j - k // 2, h]; saves only (value, kernel)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        kernel = kernel.to(value.dtype)
        ctx.save_for_backward(value, kernel)
        length, k = value.shape[1], kernel.shape[-1]
        taps = kernel.unsqueeze(-1)  # (B, L, heads, k, 1): broadcast over head_size
        out = value * taps[..., k // 2, :]
        for j in range(k):
            shift = j - k // 2
            lo, hi = _tap_range(shift, length)
            if shift and hi > lo:
                out[:, lo:hi].addcmul_(value[:, lo + shift : hi + shift], taps[:, lo:hi, :, j])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        value, kernel = ctx.saved_tensors
        grad = grad.to(value.dtype)
        length, k = value.shape[1], kernel.shape[-1]
        taps = kernel.unsqueeze(-1)
        grad_value = grad * taps[..., k // 2, :]
        for j in range(k):
            shift = j - k // 2
            lo, hi = _tap_range(shift, length)
            if shift and hi > lo:
                grad_value[:, lo + shift : hi + shift].addcmul_(grad[:, lo:hi], taps[:, lo:hi, :, j])
        # all k taps of the kernel gradient at once, over a window view of the padded values (no copy of
        # the window; the product is k times the values, freed at once): three ops instead of 3k
        padded = F.pad(value, (0, 0, 0, 0, k // 2, k // 2))
        windows = padded.unfold(1, k, 1).transpose(-1, -2)  # (B, L, heads, k, head_size)
        grad_kernel = (grad.unsqueeze(-2) * windows).sum(-1)
        return grad_value, grad_kernel


def dynamic_conv(value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, L, heads, head_size) x (B, L, heads, k) -> (B, L, heads, head_size), a per-position kernel."""
    if capturing():
        return shifted_taps(value, kernel.unsqueeze(-2))
    return _DynamicConv.apply(value, kernel)


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
        self.value = Linear(hidden, width)
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
        value = self.value(hidden)
        if self.mask_padding:
            value = mask.zero_padding(value)
        value = value.view(batch, length, self.num_heads, self.head_size)
        out = dynamic_conv(value, kernel)  # (B, L, heads, head_size)
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
