"""How the model benchmark measures: interleaved timings, FLOPs, matmul throughput, peak memory per process.

- Time: the closures run in turn (A B C, then C B A, ...) after a warm-up, so that load from other processes
  and thermal drift hit every side alike; medians are reported.
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one step (matmuls, convolutions, attention).
- Matmul throughput: a (4096 x 1024) @ (1024 x 1024) product in the same process, median of several runs,
  the yardstick for "achieved GFLOP/s".
- Peak memory: a fresh subprocess per measurement builds the model and the step's inputs, records its RSS,
  resets the kernel's high-water mark (``/proc/self/clear_refs``), runs the step twice (the first creates the
  optimizer state) and reports the high-water mark minus that baseline. glibc is told to return freed blocks
  to the system (``MALLOC_MMAP_THRESHOLD_``), so RSS follows live tensors.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def interleaved(steps: dict[str, Callable[[], None]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each closure, measured in alternating order."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """Each requested gradient of a convolution costs what its forward does.

    torch's own formula ignores ``groups`` for the weight gradient and charges a depthwise convolution C times
    over (14 of 77 GFLOP of a ConvBERT-small step at 128 tokens, none of them real).
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _linear_pointwise_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's linear (our projections): 2 * rows * in * out, as ``aten.addmm``."""
    rows = 1
    for size in x_shape[:-1]:
        rows *= size
    return 2 * rows * w_shape[0] * w_shape[1]


def _cpu_flash_flop(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(q_shape, k_shape, v_shape)


def _cpu_flash_backward_flop(grad_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_shape, q_shape, k_shape, v_shape)


def _addmm_inplace_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """``out.addmm_(a, b)``: 2 * m * k * n, as ``aten.addmm`` (the fused decoder accumulates its weight
    gradient in place)."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def count_flops(step: Callable[[], None]) -> int:
    """Matmul FLOPs of one call; torch's counter plus the CPU kernels it has no formula for."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {
        torch.ops.aten.convolution_backward: _conv_backward_flop,
        torch.ops.mkldnn._linear_pointwise: _linear_pointwise_flop,
        torch.ops.aten.addmm_: _addmm_inplace_flop,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flop,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward_flop,
    }
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return counter.get_total_flops()


def matmul_gflops(dtype: torch.dtype = torch.float32, onednn: bool = False, reps: int = 9) -> float:
    """Median GFLOP/s of a (4096 x 1024) @ (1024 x 1024) product: ``torch.matmul`` (MKL for fp32 on the CPU),
    or oneDNN's linear, the kernel our projections use."""
    a = torch.randn(4096, 1024).to(dtype)
    b = torch.randn(1024, 1024).to(dtype)

    def product() -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "") if onednn else a @ b

    product()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    return 2 * 4096 * 1024 * 1024 / median(times) / 1e9


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child_peak(step: Callable[[], None], repeats: int = 2) -> dict[str, float]:
    """Inside the child: baseline RSS after the build, then the high-water mark over ``repeats`` steps."""
    import gc

    gc.collect()
    baseline = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    for _ in range(repeats):
        step()
    peak = _status_kb("VmHWM")
    return {"baseline_mb": baseline / 1024, "peak_mb": peak / 1024, "increase_mb": (peak - baseline) / 1024,
            "peak_reset": reset}


def peak_memory(script: Path, spec: dict, timeout: float = 900) -> dict[str, float]:
    """Run ``script --child SPEC`` in a fresh interpreter and parse the JSON line it prints last."""
    env = {**os.environ, **CHILD_ENV}
    proc = subprocess.run([sys.executable, str(script), "--child", json.dumps(spec)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
