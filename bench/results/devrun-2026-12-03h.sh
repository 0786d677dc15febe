# The device run of 2026-12-03 (second session): bf16 attention in the model
# graph (gen_llama.py / hf_import.py --attn-dtype bf16: Q/K/V rounded after
# RoPE, a bf16 KV cache, the tensor-core attention kernels), and a Hugging
# Face checkpoint of Llama-3-8B's shapes (2 layers) against transformers.
set -x
export OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
for attn in bf16 f32; do
  timeout 120 bash bench/gpu/run.sh llama --weights bf16 --attn $attn --prompt 8192 --decode 32 > $OUT/llama-8192-$attn.log 2>&1; echo llama attn $attn rc $?
  mv $OUT/llama.json $OUT/llama-8192-attn-$attn.json 2>/dev/null
  grep -E "deltaflow dense|deltaflow sparse|PyTorch eager|dense vs PyTorch|worst rel|checks|FAIL|rror" $OUT/llama-8192-$attn.log | tail -10
done
timeout 300 bash bench/gpu/run.sh hf-llama3 --prompt ${HF_PROMPT:-8192} --decode 32 > $OUT/hf-llama3.log 2>&1; echo hf-llama3 rc $?
grep -vE "^\[" $OUT/hf-llama3.log | tail -25
