"""``torch.compile`` against eager, for our ConvBERT: inference and the pretraining step, per length.

One model (ConvBERT-small's widths, ``--layers`` layers, random weights), batch 8, fp32. Eager runs our
fast paths (per-shape GEMM choice, autograd functions); compiled runs inductor on the plain formulation
(the fast paths step aside while a graph is captured). Both are timed interleaved (bench/measure.py) after
the compiled side has been compiled for every length; compile time and the number of graphs compiled
(recompiles across lengths) are reported.

    python bench/bench_compile.py                         # 128 and 512 tokens, dynamic shapes
    python bench/bench_compile.py --static                # one graph per length instead
    python bench/bench_compile.py --layers 12 --lengths 128
    python bench/bench_compile.py --modes inference --freezing   # weights folded in (deployment)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure
import workloads
from workloads import Workload


def graphs_compiled() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--modes", nargs="+", default=["inference", "pretrain"], choices=["inference", "pretrain"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--static", action="store_true", help="compile(dynamic=False): a graph per length")
    p.add_argument("--freezing", action="store_true",
                   help="compile_for_inference: weights folded in as constants (inference only)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.freezing and "pretrain" in args.modes:
        p.error("--freezing folds the weights into the graph: inference only (--modes inference)")
    import convbert
    from convbert.compilation import compile_for_inference, compile_in_place

    print(f"machine: {machine.describe(args.threads)}")
    torch.manual_seed(0)
    config = convbert.ConvBertConfig(**{**workloads.config_kwargs("small", max(args.lengths)),
                                        "num_hidden_layers": args.layers})
    eager = convbert.ConvBertForMaskedLM(config)

    rows = []
    for mode in args.modes:
        compiled = convbert.ConvBertForMaskedLM(config)
        compiled.load_state_dict(eager.state_dict())
        # what each step calls: the encoder for inference, the whole masked LM for training
        target = compiled.convbert if mode == "inference" else compiled
        if args.static:
            target.compile(dynamic=False)
        elif args.freezing:
            compile_for_inference(target)
        else:
            compile_in_place(target)
        steps = {}
        for length in args.lengths:
            work = Workload("small", length, args.batch, "fp32", mode)
            steps[("eager", length)] = workloads.make_step("ours", eager, work)
            steps[("compiled", length)] = workloads.make_step("ours", compiled, work)
        before, started = graphs_compiled(), time.perf_counter()
        for length in args.lengths:  # compile (or reuse) for every length before timing
            steps[("compiled", length)]()
        compile_s, graphs = time.perf_counter() - started, graphs_compiled() - before
        times = measure.interleaved(steps, args.reps)
        for length in args.lengths:
            t_eager = measure.median(times[("eager", length)])
            t_compiled = measure.median(times[("compiled", length)])
            rows.append((mode, length, t_eager, t_compiled, compile_s, graphs))
            print(f"{mode:9s} L={length}: eager {t_eager:.3f}s compiled {t_compiled:.3f}s "
                  f"-> compiled/eager speed {t_eager / t_compiled:.2f}x", flush=True)
        print(f"  {mode}: {graphs} graph(s) compiled for {len(args.lengths)} lengths in {compile_s:.0f} s; "
              f"recompiles after timing: {graphs_compiled() - before - graphs}", flush=True)

    command = " ".join(["python bench/bench_compile.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{command}`")
    print(f"Machine: {machine.describe(args.threads)}. ConvBERT-small widths, {args.layers} layers, "
          f"batch {args.batch}, fp32, {'static' if args.static else 'dynamic'} shapes.\n")
    print("| mode | L | eager s | compiled s | compiled speed-up | compile s (all lengths) | graphs |")
    print("|---|---|---|---|---|---|---|")
    for mode, length, t_eager, t_compiled, compile_s, graphs in rows:
        print(f"| {mode} | {length} | {t_eager:.3f} | {t_compiled:.3f} | **{t_eager / t_compiled:.2f}x** | "
              f"{compile_s:.0f} | {graphs} |")


if __name__ == "__main__":
    main()
