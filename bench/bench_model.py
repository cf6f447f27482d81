"""ConvBERT side by side with Hugging Face's: time, tokens/s, FLOPs, achieved GFLOP/s and peak memory.

Both sides load one checkpoint (same weights) and run in one process, interleaved (see measure.py); peak
memory is measured in a fresh subprocess per (side, workload). Modes: encoder inference; the
``ConvBertForMaskedLM`` training step with full logits (class against class: forward, loss, backward, AdamW);
our pretraining step (logits only at the 15% labelled positions) against Hugging Face's masked-LM step.

    python bench/bench_model.py                 # default set (convbert-small, 128 and 512 tokens, fp32 and
                                                #   bf16, 4096-token inference, and one grouped-FFN training
                                                #   step of medium-small), writes bench/results.md
    python bench/bench_model.py --quick         # smoke run: small, 128 tokens, fp32
    python bench/bench_model.py --full          # small, medium-small, base; 128, 512, 2048 (base to 512)
    python bench/bench_model.py --configs small --lengths 512 --dtypes fp32 --modes pretrain --profile

Batch 8 by default; 2048 tokens run at batch 2 and 4096 at batch 1 (same or fewer tokens per step).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import measure
import workloads
from workloads import MODES, Workload

HERE = Path(__file__).resolve()
LONG_BATCH = {2048: 2, 4096: 1}
# issue 13's targets, fp32, on every CPU family: (config, length, mode, minimum speed-up per family, maximum
# peak-memory ratio); inference must reach 2.5x where PyTorch runs AVX-512 kernels, 1.5x with AVX2 only
TARGETS = [
    (config, length, mode, speed, memory)
    for config, length in (("small", 128), ("small", 512))
    for mode, speed, memory in (
        ("mlm", {"avx2": 1.8, "avx512": 1.8}, 0.6),
        ("pretrain", {"avx2": 2.5, "avx512": 2.5}, 0.6),
        ("inference", {"avx2": 1.5, "avx512": 2.5}, None),
    )
]


@dataclass
class Row:
    work: Workload
    ours: list[float] = field(default_factory=list)
    hf: list[float] = field(default_factory=list)
    ours_flops: int = 0
    hf_flops: int = 0
    ours_mem: float | None = None
    hf_mem: float | None = None

    @property
    def speedup(self) -> float:
        return measure.median(self.hf) / measure.median(self.ours)

    @property
    def speedup_best(self) -> float:
        """Best against best: on a shared machine the least disturbed run of each side."""
        return min(self.hf) / min(self.ours)

    @property
    def mem_ratio(self) -> float | None:
        return None if not self.ours_mem or not self.hf_mem else self.ours_mem / self.hf_mem


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="smoke run: small, 128 tokens, fp32, 2 reps")
    preset.add_argument("--full", action="store_true", help="every config and length, both dtypes")
    p.add_argument("--configs", nargs="+", choices=list(workloads.CONFIGS))
    p.add_argument("--lengths", nargs="+", type=int)
    p.add_argument("--dtypes", nargs="+", choices=list(workloads.DTYPES))
    p.add_argument("--modes", nargs="+", choices=MODES)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, help="timed repetitions per closure (default 3 train, 5 inference)")
    p.add_argument("--long", type=int, nargs="*", help="extra fp32 inference lengths of small (default 4096)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-process peak-memory runs")
    p.add_argument("--grouped", action=argparse.BooleanOptionalAction, default=None,
                   help="add medium-small's fp32 MLM step at 128 tokens (grouped FFN; default set: on)")
    p.add_argument("--memory-dtypes", nargs="+", choices=list(workloads.DTYPES), help="default: fp32 only")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--profile", action="store_true", help="also print each side's top ops (first workload)")
    p.add_argument("--out", type=Path, default=HERE.parent / "results.md")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        defaults = dict(configs=["small"], lengths=[128], dtypes=["fp32"], reps=2, long=[])
    elif args.full:
        defaults = dict(configs=list(workloads.CONFIGS), lengths=[128, 512, 2048], dtypes=["fp32", "bf16"],
                        long=[4096], memory_dtypes=["fp32", "bf16"])
    else:
        # + medium-small's MLM step: its FFN is grouped (2 groups), a path convbert-small never takes; only
        # in the default set itself, not when a selection (--configs, --lengths, ...) was asked for
        chosen = any(getattr(args, k) is not None for k in ("configs", "lengths", "dtypes", "modes"))
        defaults = dict(configs=["small"], lengths=[128, 512], dtypes=["fp32", "bf16"], long=[4096],
                        grouped=not chosen)
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.modes = args.modes or list(MODES)
    args.memory_dtypes = args.memory_dtypes or ["fp32"]
    return args


def plan(args: argparse.Namespace) -> list[Workload]:
    works = []
    for config in args.configs:
        for length in args.lengths:
            if config == "base" and length > 512:
                continue
            batch = min(args.batch, LONG_BATCH.get(length, args.batch))
            for dtype in args.dtypes:
                works += [Workload(config, length, batch, dtype, mode) for mode in args.modes]
    if "small" in args.configs or args.long:
        for length in args.long:
            works.append(Workload("small", length, LONG_BATCH.get(length, 1), "fp32", "inference"))
    grouped = Workload("medium-small", 128, args.batch, "fp32", "mlm")
    if args.grouped and grouped not in works:
        works.append(grouped)
    return works


def run_group(works: list[Workload], models: dict, args: argparse.Namespace) -> list[Row]:
    """Time every workload of one (config, length, batch): all modes and dtypes interleave (inference
    closures among themselves, training closures among themselves), so every ratio, bf16 against fp32
    included, compares runs made side by side.

    Hugging Face has no sparse step: its one training closure per dtype (mode ``train``) serves the ``mlm``
    and the ``pretrain`` rows.
    """
    steps, rows = {}, {}
    for work in works:
        rows[(work.mode, work.dtype)] = Row(work)
        steps[("ours", work.mode, work.dtype)] = workloads.make_step("ours", models["ours"], work)
        hf_key = ("hf", "inference" if work.mode == "inference" else "train", work.dtype)
        if hf_key not in steps:
            steps[hf_key] = workloads.make_step("hf", models["hf"], work)

    def targets_of(key: tuple[str, str, str]) -> list[Row]:
        side, mode, dtype = key
        modes = ["mlm", "pretrain"] if (side, mode) == ("hf", "train") else [mode]
        return [rows[(m, dtype)] for m in modes if (m, dtype) in rows]

    for inference in (True, False):
        selected = {k: v for k, v in steps.items() if (k[1] == "inference") == inference}
        if not selected:
            continue
        times = measure.interleaved(selected, args.reps or (5 if inference else 3))
        for key, values in times.items():
            for row in targets_of(key):
                setattr(row, key[0], values)
    for key, step in steps.items():
        work = next(r.work for r in targets_of(key))
        cache_key = (key[:2], work.config, work.length, work.batch)  # FLOPs do not depend on the dtype
        if cache_key not in _FLOPS:
            _FLOPS[cache_key] = measure.count_flops(step)
        for row in targets_of(key):
            setattr(row, f"{key[0]}_flops", _FLOPS[cache_key])
    return [rows[(w.mode, w.dtype)] for w in works]


_FLOPS: dict = {}


def measure_memory(rows: list[Row], paths: dict, args: argparse.Namespace) -> None:
    cache: dict = {}
    for row in rows:
        work = row.work
        if work.dtype not in args.memory_dtypes:
            continue
        for side in workloads.SIDES:
            mode = "mlm" if side == "hf" and work.mode == "pretrain" else work.mode
            key = (side, work.config, work.length, work.batch, work.dtype, mode)
            if key not in cache:
                spec = {"side": side, "path": paths[(work.config, work.length)], "threads": args.threads,
                        "work": {**work.to_dict(), "mode": mode}}
                cache[key] = measure.peak_memory(HERE, spec)["increase_mb"]
                print(f"  memory {side:4s} {work.config} L={work.length} {work.dtype} {mode}: "
                      f"+{cache[key]:.0f} MB", flush=True)
            setattr(row, f"{side}_mem", cache[key])


def child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    work = Workload(**spec["work"])
    model = workloads.load(spec["side"], spec["path"])
    step = workloads.make_step(spec["side"], model, work)
    print(json.dumps(measure.child_peak(step)))


def profile(work: Workload, models: dict, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    out = []
    for side in workloads.SIDES:
        step = workloads.make_step(side, models[side], work)
        step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        averages = prof.key_averages()
        table = averages.table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40)
        out.append(f"### {side}: {work}\n\n```\n{table}\n```\n")
    return "\n".join(out)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[Row], mm_fp32: float, mm_onednn: float) -> str:
    head = ("| config | L | B | dtype | mode | ours s | HF s | speed-up | best-of | ours tok/s | HF tok/s "
            "| ours GFLOP | HF GFLOP | ours GFLOP/s | of fp32 mm (MKL / oneDNN) | ours peak MB | HF peak MB "
            "| mem ours/HF | ceiling |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        w = r.work
        t_ours, t_hf = measure.median(r.ours), measure.median(r.hf)
        rate = r.ours_flops / t_ours / 1e9
        # the speed-up if our step were nothing but its matmul FLOPs at the run's faster fp32 matmul rate
        ceiling = t_hf / (r.ours_flops / 1e9 / max(mm_fp32, mm_onednn)) if w.dtype == "fp32" else None
        lines.append(
            f"| {w.config} | {w.length} | {w.batch} | {w.dtype} | {w.mode} | {t_ours:.3f} | {t_hf:.3f} | "
            f"**{r.speedup:.2f}x** | {r.speedup_best:.2f}x | {w.tokens / t_ours:,.0f} | "
            f"{w.tokens / t_hf:,.0f} | {r.ours_flops / 1e9:.1f} | {r.hf_flops / 1e9:.1f} | {rate:.1f} | "
            f"{rate / mm_fp32:.0%} / {rate / mm_onednn:.0%} | {fmt(r.ours_mem, '.0f')} | "
            f"{fmt(r.hf_mem, '.0f')} | {fmt(r.mem_ratio)} | {fmt(ceiling)}{'x' if ceiling else ''} |"
        )
    return "\n".join(lines)


def bf16_table(rows: list[Row]) -> str:
    by_key = {(r.work.config, r.work.length, r.work.mode, r.work.dtype): r for r in rows}
    lines = ["| config | L | mode | ours fp32 s | ours bf16 s | bf16 speed-up | best-of |", "|---" * 7 + "|"]
    for (config, length, mode, dtype), r in by_key.items():
        if dtype != "bf16" or (config, length, mode, "fp32") not in by_key:
            continue
        fp32 = by_key[(config, length, mode, "fp32")].ours
        t32, t16 = measure.median(fp32), measure.median(r.ours)
        lines.append(f"| {config} | {length} | {mode} | {t32:.3f} | {t16:.3f} | **{t32 / t16:.2f}x** | "
                     f"{min(fp32) / min(r.ours):.2f}x |")
    return "\n".join(lines) if len(lines) > 2 else ""


def targets(rows: list[Row], family: str) -> str:
    by_key = {(r.work.config, r.work.length, r.work.mode, r.work.dtype): r for r in rows}
    lines = []
    for config, length, mode, speeds, mem in TARGETS:
        r = by_key.get((config, length, mode, "fp32"))
        if r is None:
            continue
        speed = speeds[family]
        ok = r.speedup >= speed
        text = (f"- {config} {length} {mode}: speed-up {r.speedup:.2f}x (best-of {r.speedup_best:.2f}x; "
                f"target >= {speed}x on {family})")
        if mem is not None and r.mem_ratio is not None:
            ok = ok and r.mem_ratio <= mem
            text += f", memory {r.mem_ratio:.2f}x of HF's (target <= {mem}x)"
        lines.append(f"{text}: {'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def kernel_choices() -> str:
    """What the per-shape measurement chose in this process (our side), counted per op and product."""
    from convbert.kernels import autotune

    counts: dict[tuple[str, str], dict[str, int]] = {}
    for key, value in autotune.chosen().items():
        op, _threads, kind, *_ = key.split()
        bucket = counts.setdefault((op, kind), {})  # linear_act's kind is its activation
        bucket[value] = bucket.get(value, 0) + 1
    pins = [f"{op}={autotune.pinned(op)}" for op in ("linear", "linear_act") if autotune.pinned(op)]
    parts = [f"{op} {kind}: " + ", ".join(f"{v} {n}" for n, v in sorted(c.items())) + " shape classes"
             for (op, kind), c in sorted(counts.items())]
    if pins:
        parts.append("pinned " + ", ".join(pins))
    return "; ".join(parts) or "none measured"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args.child)
        return
    torch.set_num_threads(args.threads)
    works = plan(args)
    started, load_before = time.time(), measure.load_average()
    print(f"machine: {machine.describe(args.threads)}")
    # bf16 only when asked for: without AVX-512 (or forced to AVX2) it runs a reference kernel for minutes
    mm: dict[str, list[float]] = {"fp32": [], "fp32 oneDNN": []}
    if "bf16" in args.dtypes:
        mm["bf16"] = []

    def sample_matmuls() -> None:
        mm["fp32"].append(measure.matmul_gflops(torch.float32))
        mm["fp32 oneDNN"].append(measure.matmul_gflops(torch.float32, onednn=True))
        if "bf16" in mm:
            mm["bf16"].append(measure.matmul_gflops(torch.bfloat16))

    sample_matmuls()
    print("matmul GFLOP/s: " + ", ".join(f"{k} {v[0]:.0f}" for k, v in mm.items()) + f"; load {load_before}")
    rows: list[Row] = []
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        groups: dict = {}
        for work in works:
            groups.setdefault((work.config, work.length, work.batch), []).append(work)
        paths = {}
        for (config, length, batch), group in groups.items():
            paths[(config, length)] = path = workloads.checkpoint(tmp, config, length)
            models = {side: workloads.load(side, path) for side in workloads.SIDES}
            kinds = ", ".join(f"{w.mode} {w.dtype}" for w in group)
            print(f"{config} L={length} B={batch}: {kinds}", flush=True)
            group_rows = run_group(group, models, args)
            for r in group_rows:
                ours, hf = measure.median(r.ours), measure.median(r.hf)
                print(f"  {r.work.mode:9s} {r.work.dtype} ours {ours:.3f}s  HF {hf:.3f}s  "
                      f"speed-up {r.speedup:.2f}x (best-of {r.speedup_best:.2f}x)", flush=True)
            rows += group_rows
            if args.profile and not profiles:
                profiles.append(profile(group[0], models))
            del models
            sample_matmuls()
        if not args.no_memory:
            measure_memory(rows, paths, args)
    mm_fp32 = measure.median(mm["fp32"])
    command = "python bench/bench_model.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = [
        "# ConvBERT: ours vs Hugging Face transformers",
        "",
        f"`{command.strip()}` — {time.strftime('%Y-%m-%d %H:%M')}, {time.time() - started:.0f} s. "
        f"transformers {_version('transformers')}. Load average before / after: "
        f"{load_before} / {measure.load_average()}.",
        "",
        f"Machine: {machine.describe(args.threads)}.",
        "",
        f"Kernels chosen (measured per shape class at first use, `convbert/kernels/autotune.py`): "
        f"{kernel_choices()}.",
        "Matmul throughput measured in this run, (4096 x 1024) @ (1024 x 1024), median of "
        f"{len(mm['fp32'])} samples: " + ", ".join(f"{k} {measure.median(v):.0f}" for k, v in mm.items())
        + " GFLOP/s (fp32 = torch.matmul, i.e. MKL's sgemm; our projections take MKL or oneDNN per shape).",
        "",
        "Times are medians of interleaved runs (seconds per step); speed-up = HF time / ours "
        "(= tokens/s ratio); peak MB = increase of the process's peak RSS over its RSS after building "
        "the model (fresh process, two steps). GFLOP from FlopCounterMode for one step. `pretrain`: "
        "ours computes the prediction head only at the 15% masked positions; HF runs its standard "
        "masked-LM step. ceiling = HF s / (our GFLOP / the run's faster fp32 matmul GFLOP/s): the speed-up "
        "a step made of nothing but its matrix products at full matmul speed would reach.",
        "",
        table(rows, mm_fp32, measure.median(mm["fp32 oneDNN"])),
        "",
    ]
    extra = bf16_table(rows)
    if extra:
        report += ["bf16 autocast against our own fp32:", "", extra, ""]
    checks = targets(rows, machine.family())
    if checks:
        report += ["Targets (fp32):", "", checks, ""]
    report += profiles
    text = "\n".join(report)
    print("\n" + text)
    args.out.write_text(text + "\n")
    print(f"\nwritten to {args.out}")


def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return "n/a"


if __name__ == "__main__":
    main()
