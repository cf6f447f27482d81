"""Exported inference: ONNX Runtime against our eager PyTorch and Hugging Face's, the same weights.

One randomly initialised ConvBERT-small encoder (12 layers, hidden 256, as released; ``--layers`` for fewer)
is saved in Hugging Face's format; ``transformers.ConvBertModel`` and ``convbert.ConvBertModel`` load it, and
``convbert.export.export_model`` exports that directory to ONNX (and, with ``--torch-export``, to a
``torch.export`` program). All sides run the encoder forward in fp32 on the same batches (all tokens real, as
in bench_model.py), interleaved (measure.py), after checking that they agree. Prints a markdown table:
seconds per batch (median), tokens/s and ratios against our eager model.

    python bench/bench_onnx.py                          # batch 8; 128 and 512 tokens; 2 threads
    python bench/bench_onnx.py --lengths 128 --reps 3 --layers 4 --torch-export
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
import workloads

import convbert
from convbert.export import export_model


def machine(threads: int) -> str:
    """CPU model, the vector extensions PyTorch dispatches to and the CPU has, threads."""
    model, flags = None, []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = [f for f in value.split() if f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni",
                                                           "amx_tile", "amx_bf16")]
    except OSError:
        pass
    vector = torch.backends.cpu.get_cpu_capability()
    model = model or platform.processor() or platform.machine()
    return (f"{model} ({os.cpu_count()} CPUs), torch dispatch {vector}, flags {' '.join(flags) or 'n/a'}; "
            f"{threads} threads")


def batch(length: int, size: int, vocab_size: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (size, length), generator=g)
    types = torch.zeros_like(ids)
    types[:, length // 2:] = 1
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": types}


def steps(models: dict, inputs: dict[str, torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    numpy_inputs = {k: v.numpy() for k, v in inputs.items()}

    def eager(model):
        def run() -> torch.Tensor:
            with torch.inference_mode():
                return model(**inputs).last_hidden_state
        return run

    def onnx() -> torch.Tensor:
        return torch.from_numpy(models["onnxruntime"].run(None, numpy_inputs)[0])

    out = {"convbert eager": eager(models["convbert eager"]), "transformers": eager(models["transformers"]),
           "onnxruntime": onnx}
    if "torch.export" in models:
        program = models["torch.export"]

        def exported() -> torch.Tensor:
            with torch.inference_mode():
                return program(**inputs)["last_hidden_state"]

        out["torch.export"] = exported
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", nargs="+", type=int, default=[128, 512])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layers", type=int, default=12, help="encoder layers (ConvBERT-small has 12)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--opset", type=int, default=None)
    p.add_argument("--torch-export", action="store_true", help="also time the torch.export program (.pt2)")
    args = p.parse_args(argv)

    import onnxruntime
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    started, load_before = time.time(), measure.load_average()
    config = {**workloads.config_kwargs("small", max(args.lengths)), "num_hidden_layers": args.layers}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp, "convbert-small")
        torch.manual_seed(0)
        convbert.ConvBertModel(convbert.ConvBertConfig(**config)).save_pretrained(checkpoint)
        t = time.time()
        onnx_path = export_model(checkpoint, Path(tmp, "onnx"), format="onnx", opset=args.opset)
        print(f"exported {onnx_path.name} in {time.time() - t:.1f} s", flush=True)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        models = {
            "convbert eager": convbert.ConvBertModel.from_pretrained(checkpoint).eval(),
            "transformers": transformers.ConvBertModel.from_pretrained(checkpoint).eval(),
            "onnxruntime": onnxruntime.InferenceSession(str(onnx_path), options,
                                                        providers=["CPUExecutionProvider"]),
        }
        if args.torch_export:
            pt2 = export_model(checkpoint, Path(tmp, "pt2"), format="torch-export")
            models["torch.export"] = torch.export.load(pt2).module()
        for length in args.lengths:
            inputs = batch(length, args.batch, config["vocab_size"])
            closures = steps(models, inputs)
            reference = closures["convbert eager"]()
            diffs = {name: (run() - reference).abs().max().item() for name, run in closures.items()}
            times = measure.interleaved(closures, args.reps)
            base = measure.median(times["convbert eager"])
            for name, values in times.items():
                seconds = measure.median(values)
                tokens = args.batch * length / seconds
                rows.append((length, name, seconds, tokens, base / seconds, diffs[name]))
                print(f"L={length} {name:15s} {seconds:.3f} s  x{base / seconds:.2f} of convbert eager  "
                      f"max |diff| {diffs[name]:.1e}", flush=True)
    command = "python bench/bench_onnx.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print()
    print(f"`{command.strip()}` — {time.strftime('%Y-%m-%d %H:%M')}, {time.time() - started:.0f} s; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, transformers "
          f"{transformers.__version__}.")
    print(f"Machine: {machine(args.threads)}. Load average before / after: {load_before} / "
          f"{measure.load_average()}.")
    print(f"ConvBERT-small encoder, {args.layers} layers, batch {args.batch}, fp32, inference, all tokens "
          f"real; medians of {args.reps} interleaved runs. Speed = convbert eager time / this time.")
    print()
    print("| L | runtime | s / batch | tokens/s | speed vs convbert eager | max abs diff vs eager |")
    print("|---|---|---|---|---|---|")
    for length, name, seconds, tokens, ratio, diff in rows:
        print(f"| {length} | {name} | {seconds:.3f} | {tokens:,.0f} | {ratio:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
