#!/usr/bin/env bash
# The main job on the built-in example: compile examples/attention.mlir ahead
# of time, run it on generated inputs, and check it against a float64
# reference. Usage: scripts/run-example.sh [NQ [NK]]   (default 2048 2048)
set -euo pipefail
cd "$(dirname "$0")/.."
nq=${1:-2048}
nk=${2:-$nq}
./scripts/build.sh
out=build/example
mkdir -p "$out"
echo "[example] deltaflow-compile examples/attention.mlir -o $out/attention --timing"
./build/bin/deltaflow-compile examples/attention.mlir -o "$out/attention" --timing
echo "[example] generating q[1,32,$nq,128], k/v[1,8,$nk,128]"
/usr/bin/python3 examples/attention_check.py gen "$out" --nq "$nq" --nk "$nk"
echo "[example] deltaflow-run (2 threads, 3 runs)"
./build/bin/deltaflow-run "$out/attention.so" --entry=attention \
  --input q="$out/q.npy" --input k="$out/k.npy" --input v="$out/v.npy" \
  --output out="$out/out.npy" --threads 2 --repeat 3 --profile
echo "[example] checking against a float64 reference"
/usr/bin/python3 examples/attention_check.py check "$out" --causal
