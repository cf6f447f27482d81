"""The inference FFN's up-projection and GELU: fused in one oneDNN call, or the product then GELU.

oneDNN can apply the activation to each output tile while it is still in cache (``linear_act=onednn``);
otherwise the product runs on MKL or oneDNN and GELU follows, as a new tensor (what ``nn.GELU`` does) or in
place on the product's fresh output (what ``convbert/kernels/linear.py`` does). Which is fastest depends on
the CPU's vector kernels (docs/performance.md), so the model measures it per shape class; this prints all
four side by side. Milliseconds per call, median of interleaved calls; rows = batch x tokens.

    python bench/bench_activation.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_activation.py   # the AVX2 family
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure

from convbert.kernels.linear import onednn_product


def candidates(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> dict:
    return {
        "oneDNN fused": lambda: torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none"),
        "MKL + GELU": lambda: F.gelu(F.linear(x, weight, bias)),
        "MKL + GELU in place": lambda: torch.ops.aten.gelu_(F.linear(x, weight, bias)),
        "oneDNN + GELU in place": lambda: torch.ops.aten.gelu_(onednn_product(x, weight, bias)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1024, 4096],
                   help="batch x tokens (8 x 128, 8 x 512)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--reps", type=int, default=31)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = machine.start(p, argv)
    names = list(candidates(*(torch.zeros(1, 1),) * 3))
    print("| rows | " + " | ".join(f"{n} ms" for n in names) + " | fused vs best unfused |")
    print("|---" * (2 + len(names)) + "|")
    for rows in args.rows:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(rows, args.hidden, generator=g)
        weight = torch.randn(args.intermediate, args.hidden, generator=g) * args.hidden ** -0.5
        bias = torch.randn(args.intermediate, generator=g)
        ways = candidates(x, weight, bias)
        reference = F.gelu(F.linear(x, weight, bias))
        for name, run in ways.items():
            if not torch.allclose(run(), reference, atol=1e-4):
                raise SystemExit(f"{name} disagrees with F.gelu(F.linear(...))")
        with torch.inference_mode():
            times = {n: measure.median(t) for n, t in measure.interleaved(ways, args.reps, warmup=3).items()}
        unfused = min(t for n, t in times.items() if n != "oneDNN fused")
        cells = " | ".join(f"{1e3 * times[n]:.2f}" for n in names)
        print(f"| {rows} | {cells} | {unfused / times['oneDNN fused']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
