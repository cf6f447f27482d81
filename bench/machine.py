"""The machine line every benchmark prints: CPU model, vector extensions, the ISA PyTorch and oneDNN use.

A speed-up is a fact about a machine; ``family()`` says which of the two CPU families a result belongs to
(``avx512`` or ``avx2``), honouring ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA`` when a run forces the
AVX2 code path on an AVX-512 processor.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

EXTENSIONS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16")
FORCING = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "CONVBERT_KERNELS")


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return model, flags


def family() -> str:
    """``avx512`` when PyTorch's kernels run AVX-512 (and oneDNN is not capped below it), else ``avx2``."""
    capability = torch.backends.cpu.get_cpu_capability().lower()
    onednn_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").lower()
    if capability.startswith("avx512") and (not onednn_cap or onednn_cap.startswith("avx512")
                                            or onednn_cap in ("all", "default")):
        return "avx512"
    return "avx2"


def describe(threads: int | None = None) -> str:
    """One line: model, extensions present, PyTorch's kernel ISA, forcing variables, threads."""
    model, flags = _cpuinfo()
    present = [ext for ext in EXTENSIONS if ext in flags]
    forced = [f"{name}={os.environ[name]}" for name in FORCING if os.environ.get(name)]
    return (f"{model} ({os.cpu_count()} CPUs), extensions {' '.join(present) or 'unknown'}; "
            f"torch kernels {torch.backends.cpu.get_cpu_capability()}, family {family()}"
            + (f", forced: {' '.join(forced)}" if forced else "")
            + f"; {threads or torch.get_num_threads()} threads; torch {torch.__version__}")


def step_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every interleaved step benchmark shares: --lengths, --batch, --reps, --threads."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    return p


def start(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, set the thread count and print the machine line, before anything is timed."""
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"Machine: {describe(args.threads)}.\n")
    return args
