"""The CPU fast paths chosen by a fixed rule, against the plain PyTorch formulation they replace.

The GEMM library is chosen by measurement per shape (convbert/kernels/autotune.py). The other paths are
chosen by rule (always on the CPU, in eager mode), so this script checks the rule holds on the machine it
runs on: each pair is timed interleaved, forward and backward, at ConvBERT-small's shapes (batch 8). Run it
once natively and once with the AVX2 code path forced to cover both CPU families:

    python bench/bench_paths.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_paths.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure

from convbert.blocks.self_attention import _AttentionWithDropout
from convbert.kernels import dropout as fast_dropout
from convbert.kernels.convolution import depthwise_conv, per_position_conv, shifted_taps


def fwd_bwd(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> Callable[[], None]:
    leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]

    def step() -> None:
        out = fn(*leaves)
        out.backward(torch.ones_like(out))
        for t in leaves:
            t.grad = None

    return step


def unfold_conv(value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Hugging Face's span convolution: unfold the padded values to (B, L, heads, head_size, k), reduce."""
    k = kernel.shape[-1]
    padded = F.pad(value, (0, 0, 0, 0, k // 2, k // 2))
    windows = padded.unfold(1, k, 1)  # (B, L, heads, head_size, k)
    return (windows * kernel.unsqueeze(-2)).sum(-1)


def pairs(length: int, batch: int) -> dict[str, dict[str, Callable[[], None]]]:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(batch, length, 256, generator=g)
    residual = torch.randn(batch, length, 256, generator=g)
    q, k, v = (torch.randn(batch, 2, length, 64, generator=g) for _ in range(3))
    value = torch.randn(batch, length, 2, 64, generator=g)
    kernel = torch.randn(batch, length, 2, 9, generator=g).softmax(-1)
    key_source = torch.randn(batch, length, 128, generator=g)
    depthwise = torch.randn(128, 9, generator=g)
    return {
        "dropout + residual (B, L, 256)": {
            "plain": fwd_bwd(lambda x, r: r + F.dropout(x, 0.1, True), hidden, residual),
            "ours": fwd_bwd(lambda x, r: fast_dropout.dropout_add(x, r, 0.1, True), hidden, residual),
        },
        "attention + dropout 0.1 (B, 2, L, 64)": {
            "plain": fwd_bwd(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, dropout_p=0.1), q, k, v),
            "ours": fwd_bwd(lambda a, b, c: _AttentionWithDropout.apply(a, b, c, None, 0.1), q, k, v),
        },
        "span conv, per-position kernel k=9": {
            "plain": fwd_bwd(unfold_conv, value, kernel),
            "shifted taps": fwd_bwd(lambda a, b: shifted_taps(a, b.unsqueeze(-2)), value, kernel),
            "ours": fwd_bwd(per_position_conv, value, kernel),
        },
        "depthwise key conv (B, L, 128), k=9": {
            "plain": fwd_bwd(lambda a, w: shifted_taps(a, w), key_source, depthwise),
            "ours": fwd_bwd(depthwise_conv, key_source, depthwise),
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = machine.start(machine.step_parser(__doc__), argv)
    print("| path | L | plain ms | ours ms | ours speed-up | other formulations |")
    print("|---|---|---|---|---|---|")
    for length in args.lengths:
        for name, candidates in pairs(length, args.batch).items():
            timed = measure.interleaved(candidates, args.reps, warmup=2)
            times = {n: measure.median(t) * 1e3 for n, t in timed.items()}
            others = ", ".join(f"{n} {t:.2f} ms" for n, t in times.items() if n not in ("plain", "ours"))
            print(f"| {name} | {length} | {times['plain']:.2f} | {times['ours']:.2f} | "
                  f"**{times['plain'] / times['ours']:.2f}x** | {others or '-'} |", flush=True)


if __name__ == "__main__":
    main()
