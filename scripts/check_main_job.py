"""Does the main job learn on this machine, whatever its numerics? Runs `convbert-train` over a grid.

Each cell is the main job with no arguments but the seed, the thread count and the projection path
(``--onednn 0``: PyTorch's own GEMMs; ``1``: oneDNN's for every projection; the two extremes of what the
per-shape measurement in convbert/kernels/autotune.py can pick, pinned through ``CONVBERT_KERNELS``).
``--scratch`` adds the same fine-tuning without pretraining (``pretrain=none``) per seed, which the
pretrained encoder must beat. ``--isa avx2`` forces PyTorch's and oneDNN's AVX2 kernels on a machine that
has AVX-512 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``), the code path an AVX2-only CPU takes.
It prints a Markdown table (quoted in README) and writes it with every run's summary under --out.

    python scripts/check_main_job.py          # 3 seeds x ONEDNN 0/1 x 1/2 threads, + from scratch
    python scripts/check_main_job.py --seeds 0 --threads 2 --onednn 1 --isa avx2

About 3 minutes a run on 2 cores (threads=1 runs take longer); ``--jobs 2`` runs two 1-thread runs side by
side (wall times then include the contention). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
LIBRARY = {"0": "linear=plain,linear_act=plain", "1": "linear=onednn,linear_act=onednn"}


def machine() -> str:
    """CPU model, vector extensions and core count, as every figure in README states them."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    except (OSError, AttributeError):
        pass
    isa = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "?"
    return f"{model} ({isa}), {os.cpu_count()} cores"


def run_one(out: Path, name: str, overrides: list[str], env: dict[str, str]) -> dict:
    run_dir = out / name
    if (run_dir / "summary.json").is_file():  # finished in an earlier call: reuse
        return json.loads((run_dir / "summary.json").read_text())
    quiet = ["trainer.progress=false"]
    if "pretrain=none" not in overrides:
        quiet.append("pretrain.trainer.progress=false")
    command = ["convbert-train", *overrides, *quiet, f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({' '.join(command)}); see {out / f'{name}.log'}")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["command_seconds"] = round(time.perf_counter() - started, 1)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def row(label: str, summary: dict) -> str:
    stages = {s["stage"]: s for s in summary["stages"]}
    cells = [label, f"{summary.get('command_seconds', summary['wall_seconds']):.0f} s"]
    pre = stages.get("pretrain")
    if pre is not None and "discriminator_loss" in pre["dev"]:
        d, prior = pre["dev"]["discriminator_loss"], pre["dev"]["discriminator_prior_entropy"]
        cells += [f"{d:.3f} / {prior:.3f} = {d / prior:.2f}",
                  f"{pre['dev']['generator_loss']:.2f} / {pre['baseline']['unigram_loss']:.2f}"]
    elif pre is not None:
        cells += [f"MLM {pre['dev']['loss']:.2f}", f"unigram {pre['baseline']['unigram_loss']:.2f}"]
    else:
        cells += ["-", "-"]
    task = stages["task"]
    cells += [f"{task['dev']['accuracy']:.3f}", f"{task['train']['loss']:.3f}",
              "yes" if summary.get("learned") else f"NO: {summary.get('reason', '?')}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--onednn", nargs="+", default=["0", "1"], choices=["0", "1"])
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--no-scratch", dest="scratch", action="store_false",
                        help="skip the from-scratch runs (pretrain=none, one per seed)")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (each with its own threads)")
    parser.add_argument("--out", type=Path, default=Path("outputs/check_main_job"))
    parser.add_argument("overrides", nargs="*", help="extra convbert-train overrides for every run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    isa_env = AVX2_ONLY if args.isa == "avx2" else {}

    cells = []
    for seed, onednn, threads in itertools.product(args.seeds, args.onednn, args.threads):
        env = {**isa_env, "CONVBERT_KERNELS": LIBRARY[onednn], "OMP_NUM_THREADS": str(threads)}
        name = f"seed{seed}_onednn{onednn}_t{threads}_{args.isa}"
        overrides = [f"seed={seed}", f"trainer.num_threads={threads}",
                     f"pretrain.trainer.num_threads={threads}", *args.overrides]
        cells.append((f"{seed} | {onednn} | {threads}", name, overrides, env))
    if args.scratch:
        threads = max(args.threads)
        for seed in args.seeds:
            env = {**isa_env, "CONVBERT_KERNELS": LIBRARY[args.onednn[-1]], "OMP_NUM_THREADS": str(threads)}
            cells.append((f"{seed} | {args.onednn[-1]} | {threads} (pretrain=none)",
                          f"seed{seed}_scratch_t{threads}_{args.isa}",
                          [f"seed={seed}", "pretrain=none", f"trainer.num_threads={threads}",
                           *args.overrides],
                          env))
    with ThreadPoolExecutor(args.jobs) as pool:
        summaries = list(pool.map(lambda c: run_one(args.out, c[1], c[2], c[3]), cells))

    lines = [f"Machine: {machine()}; isa={args.isa}; jobs side by side: {args.jobs}; "
             f"command: python {' '.join(sys.argv)}", "",
             "| seed | ONEDNN | threads | wall | RTD disc. loss / prior entropy | generator / unigram loss "
             "| dev accuracy | final train loss | learned |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [row(label, summary) for (label, *_), summary in zip(cells, summaries, strict=True)]
    pretrained = {}
    scratch = {}
    for (label, name, *_), summary in zip(cells, summaries, strict=True):
        seed = int(label.split(" | ")[0])
        (scratch if "scratch" in name else pretrained).setdefault(seed, []).append(summary["dev_metric"])
    if scratch:
        lines.append("")
        lines.append("| dev accuracy, mean over cells | " + " | ".join(f"seed {s}" for s in sorted(scratch))
                     + " | mean ± sd over seeds |")
        lines.append("|---|" + "---|" * (len(scratch) + 1))
        for title, table in (("pretrained (RTD)", pretrained), ("from scratch", scratch)):
            means = [statistics.mean(table[s]) for s in sorted(scratch) if s in table]
            spread = statistics.stdev(means) if len(means) > 1 else 0.0
            lines.append(f"| {title} | " + " | ".join(f"{m:.3f}" for m in means)
                         + f" | {statistics.mean(means):.3f} ± {spread:.3f} |")
    text = "\n".join(lines)
    (args.out / f"table_{args.isa}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
