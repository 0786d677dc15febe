# Last run of the session: after the review fixes (one pack buffer per
# module, host-dirty marks on selection-cache writes, the 2-D cache write's
# layout check): the Llama example with bf16 attention and the
# Llama-3-8B-shaped checkpoint at 8192 again.
set -x
export OUT=${OUT:-/tmp}
timeout 120 bash bench/gpu/run.sh llama --weights bf16 --attn bf16 --prompt 8192 --decode 32 > $OUT/llama-8192-bf16.log 2>&1; echo llama rc $?
mv $OUT/llama.json $OUT/llama-8192-attn-bf16.json 2>/dev/null
grep -E "deltaflow dense|deltaflow sparse|PyTorch eager|dense vs PyTorch|worst rel|checks|FAIL|rror" $OUT/llama-8192-bf16.log | tail -10
timeout 200 bash bench/gpu/run.sh hf-llama3 --prompt 8192 --decode 32 > $OUT/hf-llama3.log 2>&1; echo hf-llama3 rc $?
grep -A12 "^Llama-3-8B shapes" $OUT/hf-llama3.log; grep -E "rror|FAIL" $OUT/hf-llama3.log | head -5
