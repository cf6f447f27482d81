"""The training step with the logits' memory reused (``convbert.kernels.recycle``) against fresh logits.

Two copies of our masked LM share a checkpoint and run interleaved in one process; in one of them every
``RecycledOutputs`` pool is switched off (no slots), which is the code path before recycling. Only the
memory of outputs over 32 MB is reused: the full-vocabulary logits of the MLM step, not the pretraining
step's labelled rows.

    python bench/bench_recycle.py              # the MLM step, then the decoder product alone
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_recycle.py   # the AVX2 family
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

from convbert.kernels.recycle import RecycledOutputs


def main(argv: list[str] | None = None) -> None:
    p = machine.step_parser(__doc__)
    p.add_argument("--config", default="small", choices=list(workloads.CONFIGS))
    args = machine.start(p, argv)
    print(f"MLM training step, {args.config}, batch {args.batch}, fp32, median of {args.reps} interleaved "
          "steps.\n")
    print("| L | recycled s | fresh s | speed-up |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            path = workloads.checkpoint(tmp, args.config, length)
            work = Workload(args.config, length, args.batch, "fp32", "mlm")
            steps = {}
            for name in ("recycled", "fresh"):
                model = workloads.load("ours", path)
                if name == "fresh":
                    for pool in _pools(model):
                        pool.slots = 0
                steps[name] = workloads.make_step("ours", model, work)
            times = {n: measure.median(t) for n, t in measure.interleaved(steps, args.reps, warmup=2).items()}
            print(f"| {length} | {times['recycled']:.3f} | {times['fresh']:.3f} | "
                  f"**{times['fresh'] / times['recycled']:.2f}x** |", flush=True)
    product_alone(args)


def _pools(model: torch.nn.Module) -> list[RecycledOutputs]:
    found = [v for m in model.modules() for v in vars(m).values() if isinstance(v, RecycledOutputs)]
    if not found:
        raise SystemExit("no RecycledOutputs in the model: nothing to compare")
    return found


def product_alone(args: argparse.Namespace) -> None:
    """The decoder product by itself: one oneDNN call into fresh memory (what a step did before) against
    ``product_into`` a touched buffer, oneDNN's 1024-column blocks and MKL's ``addmm(out=)``."""
    vocab, width = 30522, workloads.config_kwargs(args.config, 128).get("embedding_size", 128)
    print(f"\nThe decoder product alone ({width} -> {vocab}, fp32), median of {args.reps * 3} interleaved "
          "calls, ms:\n")
    print("| rows | fresh, one oneDNN call | into reused, oneDNN blocks | into reused, MKL | blocks |")
    print("|---|---|---|---|---|")
    for length in args.lengths:
        t = _product_times(args.batch * length, width, vocab, args.reps * 3)
        print(f"| {args.batch * length} | {t['fresh']:.1f} | {t['blocks']:.1f} | {t['mkl']:.1f} | "
              f"**{t['fresh'] / t['blocks']:.2f}x** |", flush=True)


def _product_times(rows: int, width: int, vocab: int, reps: int) -> dict[str, float]:
    from convbert.kernels import linear as fast_linear

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, width, generator=g), torch.randn(vocab, width, generator=g)
    b = torch.randn(vocab, generator=g)
    out = torch.zeros(rows, vocab)
    calls = {"fresh": lambda: fast_linear.onednn_product(x, w, b),
             "blocks": lambda: fast_linear._onednn_product_into(out, x, w, b),
             "mkl": lambda: fast_linear._plain_product_into(out, x, w, b)}
    return {n: 1e3 * measure.median(v) for n, v in measure.interleaved(calls, reps).items()}


if __name__ == "__main__":
    main()
