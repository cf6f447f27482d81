"""The weight gradient grad.T @ x of ConvBERT-small's projections on MKL and on oneDNN, both orientations.

oneDNN's linear computes A @ B.T, so grad.T @ x is either linear(grad.T, x.T) (the output as is) or
linear(x.T, grad.T).T (the larger side in oneDNN's output position, then a transposed copy); either may take
the operands contiguous first or strided. MKL's ``mm`` takes the transposed view directly. GFLOP/s, median of
15 interleaved calls; rows = batch x tokens.

    python bench/bench_weight_grad.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_weight_grad.py   # the AVX2 family
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure

from convbert.kernels.linear import onednn_product

# (rows, out, in) of the step's weight gradients: FFN up / down, fused QKV, square projections, conv kernels
SHAPES = [(1024, 1024, 256), (1024, 256, 1024), (1024, 384, 256), (1024, 256, 256), (1024, 128, 256),
          (4096, 1024, 256), (4096, 256, 1024)]


def candidates(grad: torch.Tensor, x: torch.Tensor) -> dict:
    return {
        "MKL mm": lambda: grad.t() @ x,
        "oneDNN, out as is, contiguous": lambda: onednn_product(grad.t().contiguous(), x.t().contiguous()),
        "oneDNN, out as is, strided": lambda: onednn_product(grad.t(), x.t()),
        "oneDNN, swapped + copy": lambda: onednn_product(x.t().contiguous(),
                                                         grad.t().contiguous()).t().contiguous(),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = machine.start(p, argv)
    names = list(candidates(torch.zeros(1, 1), torch.zeros(1, 1)))
    print("| rows | out | in | " + " | ".join(names) + " |")
    print("|---" * (3 + len(names)) + "|")
    for rows, n_out, n_in in SHAPES:
        g = torch.Generator().manual_seed(0)
        grad, x = torch.randn(rows, n_out, generator=g), torch.randn(rows, n_in, generator=g)
        times = measure.interleaved(candidates(grad, x), args.reps)
        flops = 2 * rows * n_out * n_in
        rates = [f"{flops / measure.median(times[n]) / 1e9:.0f}" for n in names]
        print(f"| {rows} | {n_out} | {n_in} | " + " | ".join(rates) + " |", flush=True)


if __name__ == "__main__":
    main()
