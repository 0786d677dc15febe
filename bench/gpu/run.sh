#!/usr/bin/env bash
# Device side of the GPU benchmark (see build.sh). Needs PyTorch with CUDA.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LD_LIBRARY_PATH="$PWD/bench/gpu/out/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if [ "${1:-}" = llama ]; then
  shift
  PYTHONUNBUFFERED=1 exec python3 bench/gpu/llama.py --out "${OUT:-/tmp}" "$@"
fi
if [ "${1:-}" = hf-llama3 ]; then
  shift
  PYTHONUNBUFFERED=1 exec python3 bench/gpu/hf_llama3.py run --out "${OUT:-/tmp}" "$@"
fi
if [ "${1:-}" = gemm ]; then
  shift
  PYTHONUNBUFFERED=1 exec python3 bench/gpu/gemm.py --out "${OUT:-/tmp}" "$@"
fi
if [ "${1:-}" = tensorcore ]; then
  shift
  PYTHONUNBUFFERED=1 exec python3 bench/gpu/tensorcore.py --out "${OUT:-/tmp}" "$@"
fi
PYTHONUNBUFFERED=1 python3 bench/gpu/gpu_bench.py --out "${OUT:-/tmp}" "$@"
