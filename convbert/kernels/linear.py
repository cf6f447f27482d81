"""Dense projections through oneDNN on the CPU: the same fp32 products as MKL's sgemm, by another library.

``nn.Linear`` on the CPU calls MKL, which on AMD processors runs its AVX2 kernels; oneDNN (shipped inside
every x86 PyTorch build, ``torch.ops.mkldnn._linear_pointwise``) runs AVX-512 where the processor has it.
Which is faster depends on the machine (measured per CPU in docs/performance.md); results are equal to fp32
rounding. Backward computes the weight gradient in whichever orientation puts the larger dimension in
oneDNN's fast (output) position.

``Linear`` is an ``nn.Linear`` (same parameters, names, init and checkpoints) whose forward takes that path
for float32 CPU tensors in eager mode; under autocast (PyTorch already routes bf16 CPU matmuls to oneDNN),
``torch.compile``, other dtypes or devices it is ``F.linear``. ``CONVBERT_ONEDNN=0`` turns the path off.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from convbert.capture import capturing


def _probe() -> bool:
    """Whether oneDNN's linear exists in this build and agrees with ``F.linear`` on a small product."""
    if os.environ.get("CONVBERT_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(5, 7, generator=g), torch.randn(3, 7, generator=g), torch.randn(3, generator=g)
        return bool(torch.allclose(product(x, w, b), F.linear(x, w, b), atol=1e-5))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias) by oneDNN; x may have leading batch dimensions, both may be strided."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


_AVAILABLE: bool | None = None


def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``linear(x, weight)`` takes the oneDNN path."""
    global _AVAILABLE
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if capturing() or torch.is_autocast_enabled("cpu"):
        return False
    if _AVAILABLE is None:
        _AVAILABLE = _probe()
    return _AVAILABLE


def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad.T @ x for 2-D (N, out) and (N, in), the larger of out and in in oneDNN's output position.

    Both are made contiguous first: given the transpose of a column slice (the grouped FFN's blocks), oneDNN
    falls back to a reference kernel, three orders of magnitude slower.
    """
    grad, x = grad.contiguous(), x.contiguous()
    if grad.shape[1] > x.shape[1]:
        return product(x.t(), grad.t()).t().contiguous()
    return product(grad.t(), x.t())


def input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad @ weight, (..., out) x (out, in) -> (..., in); a strided grad (a column slice) is copied first:
    the copy costs far less than oneDNN's strided path."""
    return product(grad.contiguous(), weight.t())


class _OneDnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return product(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad2d = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = input_grad(grad2d, weight).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(grad2d, x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad2d.sum(0)
        return grad_x, grad_w, grad_b


# activations oneDNN applies inside the product (its "post-ops"), as (attr, algorithm), exactly as torch does
FUSED_ACTIVATIONS = {"gelu": ("gelu", "none"), "gelu_pytorch_tanh": ("gelu", "tanh"), "relu": ("relu", "")}


def linear_activation(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor | None:
    """act(x @ weight.T + bias) in one oneDNN call, for inference; None where that path does not apply.

    The activation is applied while the output tile is still in cache: the separate elementwise pass over
    the (B, L, intermediate) tensor (a seventh of ConvBERT-small's inference time) disappears.
    """
    if torch.is_grad_enabled() or activation not in FUSED_ACTIVATIONS or not uses_onednn(x, weight):
        return None
    attr, algorithm = FUSED_ACTIVATIONS[activation]
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], algorithm)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN for float32 on the CPU in eager mode."""
    if not uses_onednn(x, weight):
        return F.linear(x, weight, bias)
    return _OneDnnLinear.apply(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` whose forward is ``linear`` above (oneDNN on the CPU); a drop-in, same state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
