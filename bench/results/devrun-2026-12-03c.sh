# The device run of 2026-12-03 (afternoon): the GEMV's checks and speed, the Llama example's decode on it.
set -x
export OUT=${OUT:-/tmp}
timeout 100 bash bench/gpu/run.sh gemm --rows 1,4,15,16 --bench '' --gemv-bench 1 > $OUT/gemm.log 2>&1; echo gemm rc $?
grep -E "ok  |FAIL|GEMV|copy|checks|Error|error" $OUT/gemm.log | tail -40
timeout 150 bash bench/gpu/run.sh llama --weights bf16 --prompt 2048 --decode 16 > $OUT/llama.log 2>&1; echo llama rc $?
tail -30 $OUT/llama.log
