#!/usr/bin/env bash
# Builds, on this (CPU) machine, everything the GPU benchmark runs on the
# device machine, into bench/gpu/out/ (git-ignored; carry it):
#   CUDA modules of examples/attention.mlir (dense, window + sinks,
#   token-select), dense-f16 of examples/attention_f16kv.mlir (f16 K/V:
#   inputs q float32 [1,32,N,128], k and v float16 [1,8,N,128]; output out
#   float32), the Llama-style example for --target=cuda (bench/gpu/llama.py),
#   the x86-64 deltaflow-run and the oneTBB it links.
# On the device: bash bench/gpu/run.sh   (prints the table, writes $OUT/gpu.json)
#                bash bench/gpu/run.sh hf-llama3 [args]   (a Llama-3-8B-shaped HF checkpoint vs transformers)
#                bash bench/gpu/run.sh tensorcore [args]   (bf16/f16 tensor cores)
#                bash bench/gpu/run.sh gemm [args]         (graph matmuls on the tensor-core GEMM)
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/build.sh >/dev/null
out=bench/gpu/out
rm -rf "$out" && mkdir -p "$out/lib"
compile() { ./build/bin/deltaflow-compile examples/attention.mlir --target=cuda -o "$out/$1" "${@:2}"; }
compile dense
./build/bin/deltaflow-compile examples/attention_f16kv.mlir --target=cuda -o "$out/dense-f16"
compile window --sparsity="policy=window sinks=128 window=2048 chunk=512"
compile token-select --sparsity="policy=token-select budget=2048 sinks=128 window=512 chunk=512"
# Tensor-core attention (bf16/f16): every case of tensorcore_cases.py as a
# module and as bare PTX (for bench/gpu/tensorcore.py --via=direct).
python3 bench/gpu/tensorcore_cases.py "$out/tc"
for m in "$out"/tc/*.mlir; do
  tiles=$(cat "${m%.mlir}.tiles" 2>/dev/null || true)
  # Other flags (--sparsity=...), one argument per line.
  flags=()
  [[ -f "${m%.mlir}.flags" ]] && mapfile -t flags < "${m%.mlir}.flags"
  # shellcheck disable=SC2086  # the tile flags are separate words
  ./build/bin/deltaflow-compile "$m" --target=cuda -o "${m%.mlir}" $tiles "${flags[@]}"
  # shellcheck disable=SC2086
  ./build/bin/deltaflow-compile "$m" --target=cuda --emit=ptx -o "${m%.mlir}" $tiles "${flags[@]}"
done
# Graph matmuls by bf16/f16 nn.Linear weights on the tensor-core GEMM
# (bench/gpu/gemm.py): Llama-3-8B projections, and the two-projection test
# graph with and without the GEMM (--tile tensorcore.gemm=0: Halide SIMT).
python3 bench/gpu/gemm.py --write-cases "$out/gemm"
for m in "$out"/gemm/*.mlir; do
  ./build/bin/deltaflow-compile "$m" --target=cuda -o "${m%.mlir}"
  ./build/bin/deltaflow-compile "$m" --target=cuda --emit=ptx -o "${m%.mlir}"
done
lin=test/lit/TensorCore/Inputs/linear-bf16.mlir
./build/bin/deltaflow-compile $lin --target=cuda -o "$out/gemm/linear"
./build/bin/deltaflow-compile $lin --target=cuda -o "$out/gemm/linear-simt" --tile tensorcore.gemm=0
# The Llama-style example (examples/llama, 2 layers, d_model 1024, 16/4
# heads of 64, f32) for the whole-model run (bench/gpu/llama.py): dense, and
# token-select + Delta as run-example.sh builds it. Weights are made on the
# device (make_weights.py; too large to carry).
mkdir -p "$out/llama"
python3 examples/llama/gen_llama.py -o "$out/llama/llama.mlir"
./build/bin/deltaflow-compile "$out/llama/llama.mlir" --target=cuda -o "$out/llama/dense"
./build/bin/deltaflow-compile "$out/llama/llama.mlir" --target=cuda -o "$out/llama/sparse" \
  --sparsity="policy=token-select budget=256 sinks=64 window=256 chunk=256" --delta="stride=64" 2>/dev/null
# The same with bf16 projection weights in nn.Linear's layout (the
# matmuls on the tensor-core GEMM): llama.py --weights bf16.
python3 examples/llama/gen_llama.py --weight-dtype bf16 -o "$out/llama/llama-bf16.mlir"
./build/bin/deltaflow-compile "$out/llama/llama-bf16.mlir" --target=cuda -o "$out/llama/dense-bf16"
./build/bin/deltaflow-compile "$out/llama/llama-bf16.mlir" --target=cuda -o "$out/llama/sparse-bf16" \
  --sparsity="policy=token-select budget=256 sinks=64 window=256 chunk=256" --delta="stride=64" 2>/dev/null
# And with bf16 attention (--attn-dtype bf16: Q/K/V rounded after RoPE, a
# bf16 KV cache, the tensor-core attention kernels): llama.py --attn bf16.
python3 examples/llama/gen_llama.py --weight-dtype bf16 --attn-dtype bf16 -o "$out/llama/llama-bf16-attn16.mlir"
./build/bin/deltaflow-compile "$out/llama/llama-bf16-attn16.mlir" --target=cuda -o "$out/llama/dense-bf16-attn16"
./build/bin/deltaflow-compile "$out/llama/llama-bf16-attn16.mlir" --target=cuda -o "$out/llama/sparse-bf16-attn16" \
  --sparsity="policy=token-select budget=256 sinks=64 window=256 chunk=256" --delta="stride=64" 2>/dev/null
# A Hugging Face checkpoint of Llama-3-8B's shapes, 2 layers
# (bench/gpu/hf_llama3.py): compiled from its config.json and a header-only
# checkpoint (the 3 GB of weights are made on the device), bf16 attention.
hdr=build/hf-llama3-header
python3 bench/gpu/hf_llama3.py header "$hdr" --layers 2
mkdir -p "$out/hf-llama3" && cp "$hdr/config.json" "$out/hf-llama3/"
python3 tools/hf_import.py "$hdr" -o "$out/hf-llama3/dense" --target=cuda --attn-dtype bf16
python3 tools/hf_import.py "$hdr" -o "$out/hf-llama3/sparse" --target=cuda --attn-dtype bf16 \
  --sparsity "policy=token-select budget=2048 sinks=128 window=512 chunk=512" --delta stride=64 2>/dev/null
cp build/bin/deltaflow-run "$out/"
for lib in libtbb.so.12 libtbbmalloc.so.2; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$out/lib/"
done
ls -la "$out"
