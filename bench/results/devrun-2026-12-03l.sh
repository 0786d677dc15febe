# Fifth run of the session: the Llama-3-8B-shaped HF checkpoint at 32768
# (run k's float32 reference ran out of memory in PyTorch's math SDPA).
set -x
export OUT=${OUT:-/tmp}
timeout 300 bash bench/gpu/run.sh hf-llama3 --prompt 32768 --decode 32 > $OUT/hf-llama3-32768.log 2>&1; echo hf-llama3 32768 rc $?
mv $OUT/hf-llama3.json $OUT/hf-llama3-32768.json
grep -E "float32 forward failed" $OUT/hf-llama3-32768.log
grep -A12 "^Llama-3-8B shapes" $OUT/hf-llama3-32768.log; grep -E "rror|FAIL" $OUT/hf-llama3-32768.log | head -5
