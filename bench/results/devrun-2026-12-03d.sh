# The device run of 2026-12-03 (evening): the GEMV with four loads in flight,
# the Llama example's decode with one wait per step and a warm-up, and
# sparse (token-select, token-select + Δ) against dense causal prefill at 64K.
set -x
export OUT=${OUT:-/tmp}
timeout 100 bash bench/gpu/run.sh gemm --rows 1,4,15,16 --bench '' --gemv-bench 1 > $OUT/gemm.log 2>&1; echo gemm rc $?
grep -E "ok  |FAIL|GEMV|copy|checks|Error|error" $OUT/gemm.log | tail -40
timeout 200 bash bench/gpu/run.sh llama --weights bf16 --prompt 2048 --decode 32 > $OUT/llama.log 2>&1; echo llama rc $?
tail -32 $OUT/llama.log
timeout 240 bash bench/gpu/run.sh tensorcore --via direct --cases bf16-gqa4-d128-causal \
  --bench 65536 --bench-case bf16-gqa4-d128-causal --bench-d256 '' --run-bench '' --window-bench '' \
  --select-bench '' --device-select '' --run-token-select '' --token-select-bench 65536@65536 \
  --decode '' --decode-bench '' --run-decode '' --nonfinite '' --delta '' \
  --delta-bench 65536@65536@0 --run-delta '' > $OUT/prefill64k.log 2>&1; echo prefill64k rc $?
grep -vE "^\s*$" $OUT/prefill64k.log | tail -40
