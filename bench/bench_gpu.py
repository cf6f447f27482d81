"""ConvBERT-base on a CUDA device, ours against Hugging Face's: tokens/s and peak memory.

Same weights on both sides (one checkpoint), interleaved timings (bench/measure.py) with a device
synchronisation inside every timed call. Precisions: ``fp32`` (TF32 off), ``tf32`` (TF32 matmuls and
convolutions), ``bf16`` (autocast). Modes: ``inference`` (encoder forward) and ``pretrain`` (ours: head only
at the 15% masked positions; Hugging Face: its masked-LM step). Peak memory: ``max_memory_allocated`` over
one step minus what was allocated before it. Run by bench/gpu.sh.

    python bench/bench_gpu.py --out bench/results_gpu.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
import workloads
from workloads import Workload

PRECISIONS = {"fp32": ("fp32", False), "tf32": ("fp32", True), "bf16": ("bf16", True)}


def synchronised(step, tf32: bool):
    def run() -> None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        step()
        torch.cuda.synchronize()

    return run


def peak_mb(step) -> float:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="base", choices=list(workloads.CONFIGS))
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    p.add_argument("--modes", nargs="+", default=["inference", "pretrain"], choices=workloads.MODES)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py: error: no CUDA device (torch.cuda.is_available() is False)")
    name = torch.cuda.get_device_name()
    started = time.time()
    lines = [f"# ConvBERT-{args.config} on {name}: ours vs Hugging Face transformers", "",
             f"`python bench/bench_gpu.py {' '.join(argv if argv is not None else sys.argv[1:])}` — "
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, batch {args.batch}.", "",
             "| L | precision | mode | ours s | HF s | speed-up (tokens/s ratio) | ours tok/s | ours peak MB "
             "| HF peak MB | mem ours/HF |", "|---" * 10 + "|"]
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            path = workloads.checkpoint(tmp, args.config, length)
            models = {side: workloads.load(side, path).cuda() for side in workloads.SIDES}
            for precision in args.precisions:
                dtype, tf32 = PRECISIONS[precision]
                for mode in args.modes:
                    work = Workload(args.config, length, args.batch, dtype, mode)
                    hf_work = Workload(args.config, length, args.batch, dtype,
                                       "mlm" if mode == "pretrain" else mode)
                    steps = {
                        "ours": synchronised(workloads.make_step("ours", models["ours"], work, "cuda"), tf32),
                        "hf": synchronised(workloads.make_step("hf", models["hf"], hf_work, "cuda"), tf32),
                    }
                    times = measure.interleaved(steps, args.reps, warmup=2)
                    mem = {side: peak_mb(step) for side, step in steps.items()}
                    ours, hf = measure.median(times["ours"]), measure.median(times["hf"])
                    row = (f"| {length} | {precision} | {mode} | {ours:.4f} | {hf:.4f} | "
                           f"**{hf / ours:.2f}x** | {work.tokens / ours:,.0f} | {mem['ours']:.0f} | "
                           f"{mem['hf']:.0f} | {mem['ours'] / mem['hf']:.2f} |")
                    print(row, flush=True)
                    lines.append(row)
            del models
            torch.cuda.empty_cache()
    lines += ["", f"{time.time() - started:.0f} s."]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
