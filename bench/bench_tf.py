"""Inference time of the TensorFlow classes (convbert.tf) against the PyTorch ones, same weights, same batch.

ConvBERT-small by default (hidden 256, 12 layers, 4 heads, head ratio 2, kernel 9, FFN 1024, embedding 128,
vocab 30522), a right-padded batch with token types. Timed: PyTorch eager under ``inference_mode``; the Keras
model called eagerly; the same call inside ``tf.function`` (a graph); and compiled with XLA
(``jit_compile=True``). Runs alternate (so background load hits all alike), after warm-up runs that also
trace and compile; the table gives medians, tokens/s and the ratio to PyTorch, after checking that every
variant gives the same last hidden state.

    python bench/bench_tf.py [--batch-size 8] [--length 128] [--repeats 20] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch

import convbert

SMALL = dict(vocab_size=30522, hidden_size=256, num_hidden_layers=12, num_attention_heads=4, head_ratio=2,
             conv_kernel_size=9, intermediate_size=1024, embedding_size=128, pad_token_id=0)


def make_batch(batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ids, right padding (row i keeps length - 8 i tokens), a second segment from the middle on."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, SMALL["vocab_size"], (batch, length))
    keep = np.arange(length)[None, :] < np.maximum(length - 8 * np.arange(batch), 8)[:, None]
    types = (np.arange(length)[None, :] >= length // 2) & keep
    return {"input_ids": np.where(keep, ids, 0), "attention_mask": keep.astype(np.int64),
            "token_type_ids": types.astype(np.int64)}


def medians(runs: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per run; the runs alternate within each repeat."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(args.threads)
    import convbert.tf as ctf

    config = convbert.ConvBertConfig(**SMALL)
    torch.manual_seed(0)
    pt = convbert.ConvBertModel(config).eval()
    with tempfile.TemporaryDirectory() as directory:
        pt.save_pretrained(directory)
        model = ctf.TFConvBertModel.from_pretrained(directory)
    batch = make_batch(args.batch_size, args.length)
    pt_batch = {k: torch.from_numpy(v) for k, v in batch.items()}
    tf_batch = {k: tf.constant(v, tf.int32) for k, v in batch.items()}

    def pytorch():
        with torch.inference_mode():
            return pt(**pt_batch).last_hidden_state.numpy()

    graph = tf.function(lambda x: model(x).last_hidden_state)
    xla = tf.function(lambda x: model(x).last_hidden_state, jit_compile=True)
    runs = {
        "PyTorch, eager (inference_mode)": pytorch,
        "TF, Keras eager call": lambda: model(tf_batch).last_hidden_state.numpy(),
        "TF, tf.function graph": lambda: graph(tf_batch).numpy(),
        "TF, tf.function + XLA": lambda: xla(tf_batch).numpy(),
    }
    reference = pytorch()
    keep = batch["attention_mask"].astype(bool)
    diffs = {name: float(np.abs(run()[keep] - reference[keep]).max()) for name, run in runs.items()}
    result = medians(runs, args.repeats, args.warmup)

    tokens = args.batch_size * args.length
    base = result["PyTorch, eager (inference_mode)"]
    print(f"ConvBERT-small, batch {args.batch_size} x {args.length} tokens, {args.threads} threads, "
          f"median of {args.repeats} (after {args.warmup} warm-up runs); torch {torch.__version__}, "
          f"tensorflow {tf.__version__}\n")
    print("| run | median (ms) | tokens/s | time / PyTorch | max abs diff to PyTorch |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in result.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {tokens / seconds:,.0f} | {seconds / base:.2f} "
              f"| {diffs[name]:.1e} |")


if __name__ == "__main__":
    main()
