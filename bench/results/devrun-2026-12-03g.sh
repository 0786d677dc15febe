# The device run of 2026-12-03 (last): the Llama example after the fix that
# makes generate's timed steps wait once per step (runs d-f still waited
# after every kernel), KV cache on the GPU, warm, prompts 2048 and 8192.
set -x
export OUT=${OUT:-/tmp}
for p in 2048 8192; do
  timeout 140 bash bench/gpu/run.sh llama --weights bf16 --prompt $p --decode 32 > $OUT/llama-$p.log 2>&1; echo llama $p rc $?
  mv $OUT/llama.json $OUT/llama-$p.json
  grep -E "deltaflow dense|deltaflow sparse|PyTorch eager f32|dense vs PyTorch:|worst rel|checks|FAIL|rror" $OUT/llama-$p.log | tail -8
done
