#!/usr/bin/env bash
# On a CUDA machine, in one go (under 8 minutes on one H100): the parity tests on CUDA against Hugging Face,
# then ConvBERT-base ours vs Hugging Face at 128 and 512 tokens in fp32, TF32 and bf16 (inference and the
# pretraining step; tokens/s and peak memory), then the released ConvBERT-small recipe (experiment=pretrain_small,
# RTD, batch 128 x 128) for 300 steps on a generated 50 MB corpus in bf16 and fp16: tokens/s and MFU from its
# summary.json. Needs torch with CUDA and transformers in $PYTHON's
# environment; runs from a checkout without installing it. Results go to ${OUT:-bench}/results_gpu.md.
#
#     bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-bench}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu.sh: error: torch.cuda.is_available() is False (a CPU-only torch, or no driver)")
import transformers  # noqa: F401  (the reference side)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
PY

echo "== parity on CUDA (TF32 off)"
start=$SECONDS
CONVBERT_TEST_DEVICE=cuda NVIDIA_TF32_OVERRIDE=0 timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider \
    tests/test_parity_hf.py tests/test_device_paths.py
echo "parity: $((SECONDS - start)) s"

echo "== ConvBERT-base, ours vs Hugging Face"
start=$SECONDS
timeout 300 "$PYTHON" bench/bench_gpu.py --out "$OUT/results_gpu.md"
echo "benchmark: $((SECONDS - start)) s"

echo "== the ConvBERT-small pretraining recipe (experiment=pretrain_small), 300 steps, bf16 and fp16"
start=$SECONDS
work=$(mktemp -d)
"$PYTHON" - "$work/corpus.txt" <<'PY'
import sys
sys.path.insert(0, "bench")
from bench_data import make_corpus
from pathlib import Path
make_corpus(Path(sys.argv[1]), 50)
PY
for precision in bf16 fp16; do
  timeout 300 "$PYTHON" -m convbert.train experiment=pretrain_small "data.path=$work/corpus.txt" \
      "data.cache_dir=$work/cache" trainer.max_steps=300 trainer.warmup_steps=30 trainer.log_every=50 \
      trainer.save_every=1000 "trainer.precision=$precision" trainer.num_workers=2 "hydra.run.dir=$work/$precision" \
      > "$work/$precision.log" 2>&1 || { tail -20 "$work/$precision.log"; exit 1; }
  "$PYTHON" - "$work/$precision/summary.json" "$precision" >> "$OUT/results_gpu.md" <<'PY'
import json, sys
stage = json.load(open(sys.argv[1]))["stages"][-1]
line = (f"pretrain_small {sys.argv[2]}: {stage['tokens_per_second']:,.0f} tokens/s, {stage['steps_per_second']:.2f} "
        f"steps/s, {stage['model_tflops']:.1f} model TFLOP/s, MFU {stage.get('mfu', 'n/a')}, "
        f"final train loss {stage['train']['loss']:.3f}")
print(line)
print(line, file=sys.stderr)
PY
done
echo "recipe: $((SECONDS - start)) s"
