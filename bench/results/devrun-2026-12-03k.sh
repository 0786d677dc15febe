# Fourth run of the session, after the 2-D KV-cache write: the
# Llama-3-8B-shaped HF checkpoint at 8192 with --profile (decode kernel time
# by kind), then at 32768 (long context) timed, then the Llama example with
# bf16 attention at prompt 2048.
set -x
export OUT=${OUT:-/tmp}
timeout 150 bash bench/gpu/run.sh hf-llama3 --prompt 8192 --decode 16 --generate-args=--profile > $OUT/hf-llama3-profile.log 2>&1; echo hf-llama3 profile rc $?
grep -E "decode kernels|prefill:|decode [0-9]+/16" $OUT/hf-llama3-profile.log | grep -E "kernels|prefill|16/16" | head
grep -A12 "^Llama-3-8B shapes" $OUT/hf-llama3-profile.log
timeout 300 bash bench/gpu/run.sh hf-llama3 --prompt 32768 --decode 32 > $OUT/hf-llama3-32768.log 2>&1; echo hf-llama3 32768 rc $?
mv $OUT/hf-llama3.json $OUT/hf-llama3-32768.json
grep -A12 "^Llama-3-8B shapes" $OUT/hf-llama3-32768.log; grep -E "rror|FAIL" $OUT/hf-llama3-32768.log | head -5
timeout 100 bash bench/gpu/run.sh llama --weights bf16 --attn bf16 --prompt 2048 --decode 32 > $OUT/llama-2048-bf16.log 2>&1; echo llama 2048 rc $?
mv $OUT/llama.json $OUT/llama-2048-attn-bf16.json 2>/dev/null
grep -E "deltaflow dense|deltaflow sparse|PyTorch eager|dense vs PyTorch|worst rel|checks|FAIL|rror" $OUT/llama-2048-bf16.log | tail -10
