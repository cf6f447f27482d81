#!/usr/bin/env bash
# On a CUDA machine, in one go (under 8 minutes on one H100): the parity tests on CUDA against Hugging Face,
# then ConvBERT-base ours vs Hugging Face at 128 and 512 tokens in fp32, TF32 and bf16 (inference and the
# pretraining step; tokens/s and peak memory). Needs torch with CUDA and transformers in $PYTHON's
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
