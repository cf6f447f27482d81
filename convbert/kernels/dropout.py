"""Dropout that costs what it must on the CPU: 16 random bits per element and a one-byte keep mask.

``torch.nn.functional.dropout`` on the CPU draws a float32 Bernoulli sample per element, then divides and
multiplies: a large share of Hugging Face's ConvBERT training step, attention probabilities included. Here
one 64-bit Mersenne-Twister draw gives four 16-bit uniforms, a comparison gives the keep mask (saved for
backward as one byte per element instead of a float), and applying it is one multiply (the measured
difference: docs/performance.md). The drop probability is exact to 1/65536 and the default generator
(``torch.manual_seed``) drives it.

Elsewhere (accelerators, under ``torch.compile``, eval, p == 0) this is ``F.dropout``: the fused kernels
there are already cheap.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from convbert.capture import capturing

_LEVELS = 1 << 16


def fast_path(x: torch.Tensor, p: float, training: bool) -> bool:
    """Whether ``x`` takes the CPU eager path (else ``F.dropout``, or nothing when it is a no-op)."""
    return training and 0.0 < p < 1.0 and x.device.type == "cpu" and not capturing()


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A bool tensor, True with probability 1 - p (to 1/65536), from the default generator."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), None)
    uniform16 = words.view(torch.int16)[:n].view(shape)  # four independent 16-bit uniforms per draw
    level = min(round(p * _LEVELS), _LEVELS - 1)  # p within 1/131072 of 1 still keeps 1/65536
    threshold = torch.tensor(level - (1 << 15), dtype=torch.int16, device=device)
    return uniform16 >= threshold


def mask_as(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The bool mask as 0/1 in ``dtype``, cast explicitly and through uint8.

    A float * bool product takes a slow, unvectorised path, and so does a bool -> bf16 cast; from uint8
    both are vectorised.
    """
    return keep.view(torch.uint8).to(dtype)


def _apply(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """x * keep * scale."""
    return mask_as(keep, x.dtype).mul_(x).mul_(scale)


class _Dropout(torch.autograd.Function):
    """x * keep / (1 - p), saving only the one-byte mask."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _apply(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return _apply(grad, keep, ctx.scale), None, None


class _DropoutAdd(torch.autograd.Function):
    """residual + x * keep / (1 - p) in one pass (``addcmul``): a transformer's post-sublayer residual."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, residual: torch.Tensor, keep: torch.Tensor, scale: float):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.addcmul(residual, x, mask_as(keep, x.dtype), value=scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return _apply(grad, keep, ctx.scale), grad, None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the cheap CPU mask."""
    if not fast_path(x, p, training):
        return F.dropout(x, p, training)
    return _Dropout.apply(x, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


def dropout_add(x: torch.Tensor, residual: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``residual + F.dropout(x, p, training)``; one pass on the CPU."""
    if not fast_path(x, p, training) or residual.shape != x.shape:
        return residual + F.dropout(x, p, training)
    return _DropoutAdd.apply(x, residual, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same repr, same state) with the cheap CPU mask; ``inplace`` is ignored."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)`` in one pass."""
        return dropout_add(x, residual, self.p, self.training)
