# The device run of 2026-12-03 (night): GEMV gemv-v2 (four columns a warp)
# checked against float64 and timed against cuBLAS, then the Llama example
# with it (KV cache on the GPU, warm), then ncu on the GEMV.
set -x
export OUT=${OUT:-/tmp}
timeout 100 bash bench/gpu/run.sh gemm --rows 1,4,15,16 --bench '' --gemv-bench 1,4 > $OUT/gemm.log 2>&1; echo gemm rc $?
grep -E "ok  |FAIL|GEMV|copy|checks|Error|error" $OUT/gemm.log | tail -40
timeout 140 bash bench/gpu/run.sh llama --weights bf16 --prompt 8192 --decode 32 > $OUT/llama.log 2>&1; echo llama rc $?
grep -E "deltaflow dense|deltaflow sparse|PyTorch eager f32|dense vs PyTorch:|worst rel|checks|FAIL|rror" $OUT/llama.log | tail -8
export LD_LIBRARY_PATH="$PWD/bench/gpu/out/lib:${LD_LIBRARY_PATH:-}"
timeout 150 ncu --target-processes all -k regex:gemv --launch-count 1 \
  --section SpeedOfLight --section Occupancy --section MemoryWorkloadAnalysis --section WarpStateStats \
  python3 bench/gpu/gemm.py --out $OUT --rows '' --bench '' --gemv-bench 1 > $OUT/gemv-ncu.log 2>&1; echo ncu rc $?
grep -vE "^\s*$|----" $OUT/gemv-ncu.log | grep -E "Duration|Throughput|Occupancy|Registers|Eligible|Issued|Block Limit Reg" | head -30
