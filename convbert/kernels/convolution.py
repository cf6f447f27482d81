"""The convolution kernels of the token mixers: one formulation each, autograd included.

- ``shifted_taps``: the reference, k shifted views of one padded tensor (no (B, L, ..., k) copy); what the
  static and dynamic conv blocks use, and what inductor fuses under ``torch.compile``;
- ``depthwise_conv``: a (C, k) kernel as one channels-last ``conv2d`` (the span conv's key convolution);
- ``per_position_conv``: a kernel per position and head (ConvBERT's span-based dynamic convolution), an
  autograd function that accumulates the taps in place and saves only the values and the kernel.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from convbert.capture import capturing
from convbert.kernels.precision import autocast_off


def shifted_taps(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """out[:, l] = sum_j weights[..., j] * x[:, l + j - k // 2], zero outside the sequence.

    ``x``: (B, L, ...); ``weights``: broadcastable to x with a trailing tap axis of size k. No (B, L, ..., k)
    copy is made: each tap is a shifted view of one padded tensor. The reference formulation (and the one
    inductor fuses); eager code uses ``depthwise_conv`` and ``per_position_conv``.
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
    if capturing():  # inductor fuses the taps; its conv2d path specialises on a dynamic length (or fails)
        return shifted_taps(x, weight)
    channels, k = weight.shape
    # k multiply-adds per element: no work for low precision to save, and oneDNN's bf16 depthwise backward is
    # twice as slow as fp32's, so under autocast it stays in the input's dtype
    with autocast_off(x.device.type):
        out = F.conv2d(x.transpose(1, 2).unsqueeze(2), weight.to(x.dtype).view(channels, 1, 1, k),
                       padding=(0, k // 2), groups=channels)
    return out.squeeze(2).transpose(1, 2)


def _tap_range(shift: int, length: int) -> tuple[int, int]:
    """Output rows [lo, hi) that read input rows [lo + shift, hi + shift) inside the sequence."""
    return max(0, -shift), length - max(0, shift)


class _PerPositionConv(torch.autograd.Function):
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


def per_position_conv(value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, L, heads, head_size) x (B, L, heads, k) -> (B, L, heads, head_size), a per-position kernel."""
    if capturing():
        return shifted_taps(value, kernel.unsqueeze(-2))
    return _PerPositionConv.apply(value, kernel)
