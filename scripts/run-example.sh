#!/usr/bin/env bash
# The main job on the built-in example.
#
# scripts/run-example.sh   the trained model (models/byte-llama-16k, a
# byte-level Llama trained in-project, bench/fidelity): compiled dense and
# sparse (token-select + Delta) from its Hugging Face checkpoint, both
# prefill a built-in 16K-token prompt that ends in a retrieval question
# (examples/retrieval), and each answers greedily; prints both answers, the
# expected one, whether they agree, and both speeds.
#
# scripts/run-example.sh attention [NQ [NK]]   (default 2048 2048): compile
# examples/attention.mlir ahead of time, run it on generated inputs, and check
# it against a float64 reference.
# A sparse build: SPARSITY="policy=token-select budget=256 sinks=16 window=128 chunk=128"
# DELTA_STRIDE=32 scripts/run-example.sh attention 1024 — then the rows the Delta
# correction makes exact are checked, and the others' error is reported.
#
# scripts/run-example.sh llama [PROMPT [DECODE]]   (default 2048 16): the
# Llama-style model (examples/llama): dense and sparse (token-select + Delta)
# builds, random weights, prefill + greedy decode side by side, and the dense
# logits checked against a float64 NumPy forward pass.
set -euo pipefail
cd "$(dirname "$0")/.."
# The attention mode's variables without a mode: the attention mode, as before.
if [ $# = 0 ] && [ -z "${SPARSITY:-}${DELTA_STRIDE:-}" ]; then
  ./scripts/build.sh
  out=build/example-retrieval
  model=models/byte-llama-16k
  prompt=examples/retrieval/multikey-16k.txt
  mkdir -p "$out"
  sparsity="policy=token-select budget=2048 sinks=128 window=512 chunk=512"
  echo "[retrieval] tools/hf_import.py $model: dense, then $sparsity + Delta (stride 64)"
  /usr/bin/python3 tools/hf_import.py "$model" -o "$out/dense"
  /usr/bin/python3 tools/hf_import.py "$model" -o "$out/sparse" --sparsity "$sparsity" --delta "stride=64"
  ./build/bin/deltaflow-run generate --dense "$out/dense.so" --sparse "$out/sparse.so" --sparse-greedy \
    --weights "$model" --prompt-file "$prompt" --decode 8 --json "$out/run.json"
  /usr/bin/python3 examples/retrieval/summary.py "$out/run.json" examples/retrieval/multikey-16k.answer
  exit 0
fi
if [ "${1:-}" = attention ]; then shift; fi
if [ "${1:-}" = llama ]; then
  prompt=${2:-2048}
  decode=${3:-16}
  ./scripts/build.sh
  out=build/example-llama
  mkdir -p "$out"
  echo "[llama] gen_llama.py: 2 layers, d_model 1024, 16/4 heads of 64, vocab 4096"
  /usr/bin/python3 examples/llama/gen_llama.py -o "$out/llama.mlir"
  echo "[llama] deltaflow-compile (dense, then token-select + Delta)"
  ./build/bin/deltaflow-compile "$out/llama.mlir" -o "$out/dense" --timing 2>&1 | tail -1
  ./build/bin/deltaflow-compile "$out/llama.mlir" -o "$out/sparse" \
    --sparsity="policy=token-select budget=256 sinks=64 window=256 chunk=256" \
    --delta="stride=64" 2>/dev/null
  /usr/bin/python3 examples/llama/make_weights.py "$out/dense.manifest.json" -o "$out/weights.safetensors"
  ./build/bin/deltaflow-run generate --dense "$out/dense.so" --sparse "$out/sparse.so" \
    --weights "$out/weights.safetensors" --prompt-len "$prompt" --decode "$decode" \
    --json "$out/run.json" --dump-dir "$out"
  echo "[llama] checking the dense logits against a float64 reference"
  /usr/bin/python3 examples/llama/reference.py "$out/llama.mlir" "$out/weights.safetensors" \
    "$out/run.json" --build dense --tol 1e-4 | tail -1
  exit 0
fi
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
