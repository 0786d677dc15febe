# The device run of 2026-12-03 (late): the Llama example's decode with the KV
# cache on the GPU (default) against the host cache (--no-kv-offload), at
# prompts 2048 and 8192, warm, PyTorch eager in the same run.
set -x
export OUT=${OUT:-/tmp}
for p in 2048 8192; do
  for kv in offload host; do
    extra=""; [ $kv = host ] && extra="--no-kv-offload"
    timeout 140 bash bench/gpu/run.sh llama --weights bf16 --prompt $p --decode 32 --generate-args="$extra" > $OUT/llama-$p-$kv.log 2>&1; echo llama $p $kv rc $?
    mv $OUT/llama.json $OUT/llama-$p-$kv.json 2>/dev/null
    grep -E "deltaflow dense|deltaflow sparse|PyTorch eager f32|dense vs PyTorch:|worst rel|checks|FAIL|rror" $OUT/llama-$p-$kv.log | tail -8
  done
done
# Why the GEMV reads at ~40% of the copy rate: Nsight Compute on its first
# two launches (the 4096 -> 14336 projection at one row).
export LD_LIBRARY_PATH="$PWD/bench/gpu/out/lib:${LD_LIBRARY_PATH:-}"
timeout 200 ncu --target-processes all -k regex:gemv --launch-count 2 \
  --section SpeedOfLight --section Occupancy --section LaunchStats \
  --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
  python3 bench/gpu/gemm.py --out $OUT --rows '' --bench '' --gemv-bench 1 > $OUT/gemv-ncu.log 2>&1; echo ncu rc $?
grep -vE "^\s*$|----" $OUT/gemv-ncu.log | grep -E "Duration|Throughput|Occupancy|Registers|Warp Cycles|Stall|Eligible|Issued|Block Limit|Waves|L1|L2|DRAM|Memory|OPT|WRN|Est" | head -80
