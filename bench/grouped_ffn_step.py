"""One FFN block's forward + backward, dense against grouped, at ConvBERT-medium-small's sizes.

The grouped-FFN figure in docs/performance.md (13.4 s before the fix in ``convbert/kernels/linear.py``,
82 ms after, on 2 threads) comes from this script; run it at ``git checkout 2c63d6e~1`` for the "before"
number.

    python bench/grouped_ffn_step.py [--threads 2] [--groups 1 2 4] [--reps 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from convbert.blocks.ffn import FeedForward


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--groups", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--reps", type=int, default=4, help="timed steps after one warm-up; the last is printed")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--intermediate", type=int, default=1536)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for groups in args.groups:
        torch.manual_seed(0)
        ffn = FeedForward(args.hidden, args.intermediate, groups, "gelu", "ffn")
        x = torch.randn(args.batch, args.length, args.hidden, requires_grad=True)
        for _ in range(args.reps + 1):
            start = time.perf_counter()
            ffn(x).sum().backward()
            elapsed = time.perf_counter() - start
        print(f"{args.threads} threads, groups {groups}: {elapsed * 1000:.1f} ms per forward + backward")


if __name__ == "__main__":
    main()
