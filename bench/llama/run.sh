#!/usr/bin/env bash
# The Llama example at long prompts: dense build vs sparse build (token-select
# + Delta), prefill and greedy decode, agreement, selection-cache hits, memory.
#
#   bench/llama/run.sh [PROMPT_LEN ...]      (default: 32768 65536)
#   bench/llama/run.sh 2048 4096 16384 32768 (judges every issue #12 target)
#
# Env: DECODE (tokens to decode, default 32), THREADS (default: all cores),
# SPARSITY / DELTA (deltaflow-compile options). Results: one JSON per prompt
# length in bench/results/llama-<N>-<date>.json, and the console table.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -n "${SKIP_BUILD:-}" ] || ./scripts/build.sh >/dev/null
B=build/bin
W=build/bench-llama
mkdir -p "$W" bench/results
SPARSITY=${SPARSITY:-"policy=token-select budget=2048 sinks=128 window=512 chunk=512"}
DELTA=${DELTA:-"stride=64"}
DECODE=${DECODE:-32}
/usr/bin/python3 examples/llama/gen_llama.py -o "$W/llama.mlir"
$B/deltaflow-compile "$W/llama.mlir" -o "$W/dense"
$B/deltaflow-compile "$W/llama.mlir" -o "$W/sparse" --sparsity="$SPARSITY" --delta="$DELTA" 2>/dev/null
/usr/bin/python3 examples/llama/make_weights.py "$W/dense.manifest.json" -o "$W/weights.safetensors"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "sparse build: --sparsity=\"$SPARSITY\" --delta=\"$DELTA\""
DATE=$(date +%F)
files=()
for N in "${@:-32768 65536}"; do
  for n in $N; do
    echo "== prompt $n tokens, decode $DECODE =="
    $B/deltaflow-run generate --dense "$W/dense.so" --sparse "$W/sparse.so" \
      --weights "$W/weights.safetensors" --prompt-len "$n" --decode "$DECODE" \
      ${THREADS:+--threads $THREADS} --json "bench/results/llama-$n-$DATE.json"
    files+=("bench/results/llama-$n-$DATE.json")
  done
done
echo "== targets (issue #12; default config) =="
/usr/bin/python3 bench/llama/targets.py "${files[@]}"
