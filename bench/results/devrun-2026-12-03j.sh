# Third run of the session, after the device arena (a CUDA module's
# temporaries alias one planned device allocation instead of a cuMemAlloc /
# cuMemFree per value and run): the Llama-3-8B-shaped HF checkpoint with
# --profile, then timed without it, then the Llama example with bf16 and
# with f32 attention.
set -x
export OUT=${OUT:-/tmp}
timeout 150 bash bench/gpu/run.sh hf-llama3 --prompt 8192 --decode 16 --generate-args=--profile > $OUT/hf-llama3-profile.log 2>&1; echo hf-llama3 profile rc $?
grep -E "^\[dense\] +[0-9.]+ ms|decode kernels|prefill:" $OUT/hf-llama3-profile.log | head -20
timeout 150 bash bench/gpu/run.sh hf-llama3 --prompt 8192 --decode 32 > $OUT/hf-llama3.log 2>&1; echo hf-llama3 rc $?
grep -A12 "^Llama-3-8B shapes" $OUT/hf-llama3.log
for attn in bf16 f32; do
  timeout 120 bash bench/gpu/run.sh llama --weights bf16 --attn $attn --prompt 8192 --decode 32 > $OUT/llama-8192-$attn.log 2>&1; echo llama attn $attn rc $?
  mv $OUT/llama.json $OUT/llama-8192-attn-$attn.json 2>/dev/null
  grep -E "deltaflow dense|deltaflow sparse|PyTorch eager|dense vs PyTorch|worst rel|checks|FAIL|rror" $OUT/llama-8192-$attn.log | tail -10
done
