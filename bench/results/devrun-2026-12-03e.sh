# The device run of 2026-12-03 (late): the Llama example's decode with the KV
# cache on the GPU (default) against the host cache (--no-kv-offload), at
# prompts 2048 and 8192, warm, PyTorch eager in the same run.
set -x
export OUT=${OUT:-/tmp}
for p in 2048 8192; do
  for kv in offload host; do
    extra=""; [ $kv = host ] && extra="--no-kv-offload"
    timeout 140 bash bench/gpu/run.sh llama --weights bf16 --prompt $p --decode 32 --generate-args "$extra" > $OUT/llama-$p-$kv.log 2>&1; echo llama $p $kv rc $?
    mv $OUT/llama.json $OUT/llama-$p-$kv.json 2>/dev/null
    grep -E "deltaflow dense|deltaflow sparse|PyTorch eager f32|dense vs PyTorch:|worst rel|checks|FAIL|rror" $OUT/llama-$p-$kv.log | tail -8
  done
done
