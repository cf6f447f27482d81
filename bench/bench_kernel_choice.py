"""Our model with the GEMM library measured per shape, against PyTorch's own kernels and oneDNN everywhere.

The measured choice must never be slower than plain PyTorch (``CONVBERT_KERNELS=linear=plain``), and should
be at least as fast as always taking oneDNN (the fixed rule this project used before, right on one CPU and
wrong on another). One model, three pinnings, interleaved (bench/measure.py); ConvBERT-small, batch 8, fp32.
Run natively and with the AVX2 code path forced:

    python bench/bench_kernel_choice.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_kernel_choice.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure
import workloads
from workloads import Workload

from convbert.kernels import autotune

PINNINGS = {"measured": "", "plain": "linear=plain,linear_act=plain",
            "oneDNN always": "linear=onednn,linear_act=onednn"}


def pinned_step(step, spec: str):
    def run() -> None:
        with autotune.pinning(spec):
            step()

    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--modes", nargs="+", default=list(workloads.MODES), choices=workloads.MODES)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--extra", nargs="*", default=[], metavar="SPEC",
                   help="more pinnings to interleave, as CONVBERT_KERNELS specs (e.g. linear_act=onednn)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"Machine: {machine.describe(args.threads)}.\n")
    print("| L | mode | measured s | plain s | oneDNN-always s | measured vs plain | measured vs oneDNN |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            model = workloads.load("ours", workloads.checkpoint(tmp, "small", length))
            for mode in args.modes:
                work = Workload("small", length, args.batch, "fp32", mode)
                pinnings = {**PINNINGS, **{spec: spec for spec in args.extra}}
                steps = {name: pinned_step(workloads.make_step("ours", model, work), spec)
                         for name, spec in pinnings.items()}
                times = {n: measure.median(t) for n, t in measure.interleaved(steps, args.reps).items()}
                m, plain, onednn = times["measured"], times["plain"], times["oneDNN always"]
                extra = "".join(f" {spec}: {times[spec]:.3f} s |" for spec in args.extra)
                print(f"| {length} | {mode} | {m:.3f} | {plain:.3f} | {onednn:.3f} | **{plain / m:.2f}x** | "
                      f"**{onednn / m:.2f}x** |{extra}", flush=True)
    print(f"\nshape classes measured: {autotune.summary()}")


if __name__ == "__main__":
    main()
