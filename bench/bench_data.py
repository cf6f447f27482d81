"""How pretraining's start-up grows with the corpus: token-store preparation and launches, 10 MB to 1 GB.

    python bench/bench_data.py                       # 10, 100, 1000 MB; 1 and 2 workers; torchrun at 100 MB
    python bench/bench_data.py --sizes 10 100 --no-torchrun

Corpora are generated from the shipped text (convbert.data's Wikipedia and news paragraphs, repeated with a
copy number so no two paragraphs are equal) and tokenized with the bert-base-uncased vocabulary. For each
size: preparation throughput with 1 and 2 workers (MB of text per second) and the store's size; then
``convbert-train`` (ConvBERT-small, masked LM, batch 8 x 128, 1 step) on it: its time to the first step
(until step 1 is logged) and its peak RSS / RssAnon, at the first launch (which prepares the store) and at a
later one (which opens it). With torchrun, two processes on the 100 MB corpus in a fresh cache: how many
prepared it and each rank's peak RSS. Prints a Markdown table with the machine line (bench/machine.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe


def make_corpus(path: Path, megabytes: int) -> None:
    from convbert.data import load_corpus

    paragraphs = load_corpus(["wikipedia", "lee"])
    target, written, copy = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            for paragraph in paragraphs:
                line = f"{paragraph} ({copy})\n"
                handle.write(line)
                written += len(line.encode())
                if written >= target:
                    break
            copy += 1


def prepare_rate(corpus: Path, workers: int, root: Path) -> tuple[float, int, float]:
    """(MB/s of text, store bytes, seconds) of one preparation into a fresh directory."""
    from convbert.data.token_store import CorpusSpec, prepare
    from convbert.tokenization_fast import ConvBertTokenizerFast

    target = root / f"store-{workers}"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    tokenizer = ConvBertTokenizerFast()
    meta = prepare(CorpusSpec((str(corpus),)), tokenizer, target, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    size = sum(f["bytes"] for f in meta["files"].values())
    shutil.rmtree(target)
    return meta["text_bytes"] / 1e6 / seconds, size, seconds


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _memory(pid: int) -> tuple[int, int, str]:
    """(VmHWM, RssAnon) in kB and the command line of ``pid``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return 0, 0, ""
    values = dict(re.findall(r"^(VmHWM|RssAnon):\s+(\d+)", status, re.M))
    return int(values.get("VmHWM", 0)), int(values.get("RssAnon", 0)), command


def launch(command: list[str], cwd: Path) -> dict:
    """Run ``command``; the seconds until its first training step was logged (``metrics.jsonl``), its wall
    time and, per training process, peak RSS and peak RssAnon (MiB)."""
    run_dir = cwd / next(a.split("=", 1)[1] for a in command if a.startswith("hydra.run.dir="))
    metrics = run_dir / "metrics.jsonl"
    first_step: list[float] = []
    env = {**os.environ, "CONVBERT_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "2"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    peaks: dict[int, list[int]] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            if not first_step and metrics.is_file() and '"train"' in metrics.read_text():
                first_step.append(time.perf_counter() - started)
            for pid in _descendants(process.pid):
                hwm, anon, cmd = _memory(pid)
                parent = _parent(pid)
                training = pid == process.pid or _memory(parent)[2].startswith(
                    f"{sys.executable} -m torch.distributed.run")  # a rank, not a tokenizing worker
                if training and "convbert.train" in cmd and "torch.distributed.run" not in cmd:
                    peak = peaks.setdefault(pid, [0, 0])
                    peak[0], peak[1] = max(peak[0], hwm), max(peak[1], anon)
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout, stderr = process.communicate()
    done.set()
    watcher.join()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return {"seconds": seconds, "first_step": first_step[0] if first_step else seconds,
            "peaks_mib": [(v[0] / 1024, v[1] / 1024) for v in peaks.values()],
            "prepared": (stdout + stderr).count("prepared "), "output": stdout + stderr}


def train_command(corpus: Path, cache: Path, torchrun: bool = False) -> list[str]:
    head = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun
            else [sys.executable])
    return [*head, "-m", "convbert.train", "model=convbert_small", "task=pretrain_mlm", "pretrain=none",
            "tokenizer=bert-base-uncased", f"data.path={corpus}", f"data.cache_dir={cache}",
            "data.prepare_workers=2", "data.max_dev_examples=8", "trainer.max_steps=1",
            f"trainer.batch_size={4 if torchrun else 8}", "trainer.progress=false",
            "trainer.eval_batch_size=8", "trainer.log_every=1", "hydra.run.dir=run-" + str(time.time_ns())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="corpus sizes in MB")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-torchrun", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(describe())
    print(f"command: python bench/bench_data.py {' '.join(sys.argv[1:])}\n")
    print("| corpus | prepare, MB/s (" + ", ".join(f"{w} worker{'s' * (w > 1)}" for w in args.workers)
          + ") | speed-up | store MB | first launch: s to step 1 / peak RSS / RssAnon MiB "
            "| later launch: s to step 1 / peak RSS / RssAnon MiB |")
    print("|---|---|---|---|---|---|")
    for megabytes in args.sizes:
        corpus = scratch / f"corpus-{megabytes}mb.txt"
        if not corpus.exists():
            make_corpus(corpus, megabytes)
        rates = [prepare_rate(corpus, w, scratch) for w in args.workers]
        cache = scratch / f"cache-{megabytes}"
        shutil.rmtree(cache, ignore_errors=True)
        first = launch(train_command(corpus, cache), scratch)
        later = launch(train_command(corpus, cache), scratch)
        cells = [f"{r[0]:.2f}" for r in rates]
        speedup = f"{rates[-1][0] / rates[0][0]:.2f}x" if len(rates) > 1 else "-"

        def launched(result: dict) -> str:
            rss, anon = result["peaks_mib"][0] if result["peaks_mib"] else (0, 0)
            return f"{result['first_step']:.1f} / {rss:,.0f} / {anon:,.0f}"

        print(f"| {megabytes:,} MB | {' / '.join(cells)} | {speedup} | {rates[0][1] / 1e6:,.1f} | "
              f"{launched(first)} | {launched(later)} |", flush=True)
    if not args.no_torchrun:
        size = 100 if 100 in args.sizes else args.sizes[0]
        corpus, cache = scratch / f"corpus-{size}mb.txt", scratch / "cache-torchrun"
        shutil.rmtree(cache, ignore_errors=True)
        result = launch(train_command(corpus, cache, torchrun=True), scratch)
        ranks = ", ".join(f"{rss:,.0f} / {anon:,.0f}" for rss, anon in result["peaks_mib"])
        print(f"\ntorchrun --nproc_per_node=2 on {size} MB, fresh cache: {result['first_step']:.1f} s to "
              f"step 1 ({result['seconds']:.1f} s in all); stores prepared: {result['prepared']}; per-rank "
              f"peak RSS / RssAnon MiB: {ranks}")
    if args.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
