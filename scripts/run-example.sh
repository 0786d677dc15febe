#!/usr/bin/env bash
# The main job on the built-in example: compile examples/attention.mlir ahead
# of time, run it on generated inputs, and check it against a float64
# reference. Usage: scripts/run-example.sh [NQ [NK]]   (default 2048 2048)
# A sparse build: SPARSITY="policy=token-select budget=256 sinks=16 window=128 chunk=128"
# DELTA_STRIDE=32 scripts/run-example.sh 1024 — then the rows the Delta
# correction makes exact are checked, and the others' error is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
nq=${1:-2048}
nk=${2:-$nq}
./scripts/build.sh
out=build/example
mkdir -p "$out"
echo "[example] deltaflow-compile examples/attention.mlir -o $out/attention --timing"
opts=()
if [ -n "${SPARSITY:-}" ]; then opts+=("--sparsity=$SPARSITY"); fi
if [ -n "${DELTA_STRIDE:-}" ]; then opts+=("--delta=stride=$DELTA_STRIDE"); fi
./build/bin/deltaflow-compile examples/attention.mlir -o "$out/attention" --timing ${opts[@]+"${opts[@]}"}
echo "[example] generating q[1,32,$nq,128], k/v[1,8,$nk,128]"
/usr/bin/python3 examples/attention_check.py gen "$out" --nq "$nq" --nk "$nk"
echo "[example] deltaflow-run (2 threads, 3 runs)"
./build/bin/deltaflow-run "$out/attention.so" --entry=attention \
  --input q="$out/q.npy" --input k="$out/k.npy" --input v="$out/v.npy" \
  --output out="$out/out.npy" --threads 2 --repeat 3 --profile
echo "[example] checking against a float64 reference"
if [ -n "${SPARSITY:-}" ] && [ -n "${DELTA_STRIDE:-}" ]; then
  /usr/bin/python3 examples/attention_check.py check "$out" --causal --delta-stride "$DELTA_STRIDE"
elif [ -n "${SPARSITY:-}" ]; then
  /usr/bin/python3 examples/attention_check.py check "$out" --causal --report
else
  /usr/bin/python3 examples/attention_check.py check "$out" --causal
fi
