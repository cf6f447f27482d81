"""Dense projections on the CPU through whichever GEMM library is faster on this machine, per shape.

``nn.Linear`` on the CPU calls MKL's sgemm; oneDNN (inside every x86 PyTorch build,
``torch.ops.mkldnn._linear_pointwise``) computes the same fp32 products by other kernels. Which is faster is
a property of the processor and the shape, not a constant: on a Zen 4 with AVX-512 oneDNN wins most
ConvBERT products, limited to AVX2 fewer (bench/results.md). So each of a projection's three
products (forward, input gradient, weight gradient) is sent to the library measured faster for its shape
class at first use (``autotune``), plain PyTorch unless oneDNN is clearly ahead. Results agree to fp32
rounding.

``Linear`` is an ``nn.Linear`` (same parameters, names, init and checkpoints) whose forward takes that path
for float32 CPU tensors in eager mode; under autocast (PyTorch already routes bf16 CPU matmuls to oneDNN),
``torch.compile``, other dtypes or devices it is ``F.linear``. ``CONVBERT_KERNELS=linear=plain`` (or
``CONVBERT_ONEDNN=0``) turns the measurement off and keeps PyTorch's own kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from convbert.capture import capturing
from convbert.kernels import autotune

# below this many FLOPs a product stays on plain PyTorch unmeasured: any difference is smaller than the
# measurement and the autograd function's own overhead
SMALL_WORK = 4e6
# a first-use measurement of a larger product times a slice of its rows, at most this many FLOPs per call
MEASURE_FLOPS = 1e9
MIN_MEASURE_ROWS = 256

_AVAILABLE: bool | None = None


def onednn_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias) by oneDNN; x may have leading batch dimensions, both may be strided."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def available() -> bool:
    """Whether oneDNN's linear exists in this build and agrees with ``F.linear`` on a small product."""
    global _AVAILABLE
    if autotune.pinned("linear") == autotune.PLAIN:
        return False
    if _AVAILABLE is None:
        _AVAILABLE = _probe()
    return _AVAILABLE


def _probe() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(5, 7, generator=g), torch.randn(3, 7, generator=g), torch.randn(3, generator=g)
        return bool(torch.allclose(onednn_product(x, w, b), F.linear(x, w, b), atol=1e-5))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def eligible(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether products of ``x`` and ``weight`` may leave plain PyTorch: fp32 on the CPU, eager, no autocast,
    oneDNN present. (Which library each product then uses is measured: ``choose``.)"""
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if capturing() or torch.is_autocast_enabled("cpu"):
        return False
    return available()


def small(flops: float, op: str = "linear") -> bool:
    """Too little work to measure: plain PyTorch, unless ``CONVBERT_KERNELS`` pins a choice for ``op``."""
    return flops < SMALL_WORK and autotune.pinned(op) is None


def choose(kind: str, rows: int, k: int, n: int, layout: tuple, make: Callable[[int], dict],
           op: str = "linear") -> str:
    """``plain`` or ``onednn`` for a (rows x k) @ (k x n) product of one ``kind`` and operand ``layout``.

    ``make(sample_rows)`` builds both candidates on the first ``sample_rows`` rows (called only to measure).
    """
    if not available() or small(2 * rows * k * n, op):
        return autotune.PLAIN
    sample = min(rows, max(MIN_MEASURE_ROWS, int(MEASURE_FLOPS // (2 * k * n))))
    return autotune.pick(op, (kind, autotune.rows_class(rows), k, n, *layout), lambda: make(sample))


def _dispatch(kind: str, k: int, n: int, plain: Callable, onednn: Callable, rows_of: tuple, rest: tuple = ()):
    """``plain(*rows_of, *rest)`` or ``onednn(...)``, whichever ``choose`` picks for this product; the
    operands in ``rows_of`` share the product's row (N) dimension and are what a measurement slices."""
    rows = rows_of[0].shape[0]

    def make(sample: int) -> dict:
        sliced = tuple(t[:sample] for t in rows_of)
        return {autotune.PLAIN: lambda: plain(*sliced, *rest), "onednn": lambda: onednn(*sliced, *rest)}

    layout = tuple(t.is_contiguous() for t in (*rows_of, *rest) if t is not None)
    run = onednn if choose(kind, rows, k, n, layout, make) == "onednn" else plain
    return run(*rows_of, *rest)


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias) by the library chosen for this shape class; x may have batch dimensions."""
    k = x.shape[-1]
    flat = x.reshape(-1, k)
    out = _dispatch("forward", k, weight.shape[0], F.linear, onednn_product, (flat,), (weight, bias))
    return out.view(*x.shape[:-1], weight.shape[0])


def _plain_product_into(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    return torch.mm(x, weight.t(), out=out) if bias is None else torch.addmm(bias, x, weight.t(), out=out)


def _onednn_product_into(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """oneDNN's op returns a new tensor, so the product goes through blocks of 256-1024 columns, 4-16 MB up to
    16384 rows: small enough that the allocator reuses their memory (a block over 32 MB would be a fresh
    mmap, page-faulted on every call)."""
    columns = max(256, min(1024, (1 << 22) // max(1, x.shape[0])))
    for start in range(0, weight.shape[0], columns):
        block = slice(start, start + columns)
        out[:, block] = onednn_product(x, weight[block], None if bias is None else bias[block])
    return out


def product_into(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """``out[:] = x @ weight.T (+ bias)`` for 2-D x and a contiguous ``out``, by the library measured faster
    for writing into existing memory (``recycle``): MKL writes there directly, oneDNN block by block."""
    return _dispatch("forward_into", x.shape[1], weight.shape[0], _plain_product_into, _onednn_product_into,
                     (out, x), (weight, bias))


def _onednn_weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad.T @ x with the larger of out and in in oneDNN's fast (output) position.

    Both are made contiguous first: given the transpose of a column slice (the grouped FFN's blocks), oneDNN
    falls back to a reference kernel, three orders of magnitude slower.
    """
    grad, x = grad.contiguous(), x.contiguous()
    if grad.shape[1] > x.shape[1]:
        return onednn_product(x.t(), grad.t()).t().contiguous()
    return onednn_product(grad.t(), x.t())


def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad.T @ x for 2-D (N, out) and (N, in): the weight gradient of a projection."""
    return _dispatch("weight_grad", x.shape[1], grad.shape[1], lambda g, xs: g.t() @ xs, _onednn_weight_grad,
                     (grad, x))


def input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad @ weight, (N, out) x (out, in) -> (N, in): the input gradient of a projection. For oneDNN a
    strided grad (a column slice) is copied first: the copy costs far less than its strided path."""
    return _dispatch("input_grad", grad.shape[1], weight.shape[1], lambda g, w: g @ w,
                     lambda g, w: onednn_product(g.contiguous(), w.t()), (grad,), (weight,))


class _Linear(torch.autograd.Function):
    """x @ weight.T + bias whose three products each take the library chosen for their shape."""

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
# the same activations applied in place to a fresh product's output (inference: nothing else holds it)
IN_PLACE_ACTIVATIONS = {"gelu": torch.ops.aten.gelu_, "relu": torch.relu_,
                        "gelu_pytorch_tanh": lambda y: torch.ops.aten.gelu_(y, approximate="tanh")}


def linear_activation(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor | None:
    """act(x @ weight.T + bias) for inference; None where this path does not apply (training, other
    activations, devices or dtypes).

    Two ways, measured per shape class like every product (op ``linear_act``): oneDNN applies the activation
    inside the product while each output tile is still in cache, or the product runs on the library chosen
    for its shape and the activation follows in place on its output. Neither wins everywhere: on a Zen 4
    the fused call is within a few per cent of the best unfused way with AVX-512 kernels and 11-24% slower
    with AVX2 ones (docs/performance.md). ``CONVBERT_KERNELS=linear_act=onednn|plain`` pins either.
    """
    if torch.is_grad_enabled() or activation not in FUSED_ACTIVATIONS or not eligible(x, weight):
        return None
    flat = x.reshape(-1, x.shape[-1])
    k, n = flat.shape[1], weight.shape[0]
    if small(2 * flat.shape[0] * k * n, "linear_act"):
        return None
    attr, algorithm = FUSED_ACTIVATIONS[activation]
    in_place = IN_PLACE_ACTIVATIONS[activation]

    def unfused(rows: torch.Tensor) -> torch.Tensor:
        return in_place(product(rows, weight, bias))

    def fused(rows: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, attr, [], algorithm)

    def make(sample: int) -> dict:
        rows = flat[:sample]
        return {autotune.PLAIN: lambda: unfused(rows), "onednn": lambda: fused(rows)}

    choice = choose(activation, flat.shape[0], k, n, (flat.is_contiguous(),), make, op="linear_act")
    out = fused(flat) if choice == "onednn" else unfused(flat)
    return out.view(*x.shape[:-1], n)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; for float32 on the CPU in eager mode each product takes the faster
    library for its shape."""
    if not eligible(x, weight) or small(2 * x.numel() * weight.shape[0]):
        return F.linear(x, weight, bias)
    if not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return product(x, weight, bias)
    return _Linear.apply(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` whose forward is ``linear`` above; a drop-in, same state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
