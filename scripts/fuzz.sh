#!/usr/bin/env bash
# Fuzzing (docs/hardening.md): builds the libFuzzer targets of test/fuzz with
# clang, ASan and UBSan into build-fuzz/ (the full configuration, MLIR
# included; only the fuzz targets and what they link are built), then runs
# each for SECONDS on a scratch copy of its seed corpus (test/fuzz/corpus/
# is not modified) with its dictionary. Any finding (a sanitizer report, a
# crash or broken invariant, a timeout of 10 s, 2 GB of memory, a leak)
# fails; its input is kept in build-fuzz/fuzz-out/TARGET/ and printed with
# the command that reproduces it.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]   default 60 s each, all targets:
#                                           npy safetensors manifest attn-mlir pass-options
#   FUZZ_JOBS=N    fuzzers run at once (default DELTAFLOW_JOBS or 2)
#   FUZZ_RSS_MB=N  memory limit per fuzzer (default 2048; the MLIR targets
#                  grow by about 100 MB per million inputs, so runs of more
#                  than half an hour need more)
#
# CI runs 60 s per target (scripts/test.sh); run longer by hand, e.g.
# `scripts/fuzz.sh 3600 npy`. To keep what a run found as seeds, copy
# build-fuzz/fuzz-out/TARGET/corpus/ into test/fuzz/corpus/TARGET/ after
# minimising it (the binary's -merge=1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(npy safetensors manifest attn-mlir pass-options)
fi
mlir_dir=$(./scripts/install-deps.sh | sed -n 's/^MLIR_DIR=//p')
llvm_root=${mlir_dir%/lib/cmake/mlir}   # /usr/lib/llvm-<pinned major>
jobs=${DELTAFLOW_JOBS:-2}
parallel=${FUZZ_JOBS:-$jobs}
build=${FUZZ_BUILD_DIR:-build-fuzz}

start=$SECONDS
if [ ! -f "$build/build.ninja" ]; then
  echo "[fuzz] configuring $build/ (clang, fuzzer + address;undefined)"
  CC="$llvm_root/bin/clang" CXX="$llvm_root/bin/clang++" \
    cmake -G Ninja -B "$build" -DCMAKE_BUILD_TYPE=Release -DMLIR_DIR="$mlir_dir" \
    -DDELTAFLOW_FUZZ=ON "-DDELTAFLOW_SANITIZE=address;undefined" >/dev/null
fi
echo "[fuzz] building ${targets[*]} with ninja -j$jobs"
set +e
ninja -C "$build" -j"$jobs" "${targets[@]/#/fuzz-}" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Generating|Automatic)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[fuzz] build FAILED (ninja exit $status)" >&2
  exit "$status"
fi
echo "[fuzz] built in $((SECONDS - start)) s"

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
out=$build/fuzz-out
run_one() {
  local t=$1 dir=$out/$1
  rm -rf "$dir" && mkdir -p "$dir/corpus"
  cp -R "test/fuzz/corpus/$t/." "$dir/corpus/"
  local dict=()
  [ -f "test/fuzz/dict/$t.dict" ] && dict=(-dict="test/fuzz/dict/$t.dict")
  set +e
  TMPDIR=$dir "$build/bin/fuzz-$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 -artifact_prefix="$dir/" \
    "${dict[@]}" "$dir/corpus" > "$dir/log" 2>&1
  echo $? > "$dir/status"
  set -e
}
t0=$SECONDS
running=0
for t in "${targets[@]}"; do
  echo "[fuzz] fuzz-$t for $seconds s"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
echo "[fuzz] ran in $((SECONDS - t0)) s"

failed=0
for t in "${targets[@]}"; do
  dir=$out/$t
  status=$(cat "$dir/status" 2>/dev/null || echo 1)
  stats=$(grep -E '^#[0-9]+.*DONE' "$dir/log" | tail -1 || true)
  echo "[fuzz] fuzz-$t: exit $status; ${stats:-no stats}; corpus $(ls "$dir/corpus" | wc -l) files"
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "[fuzz] fuzz-$t FOUND A BUG; the end of its log ($dir/log):" >&2
    tail -n 60 "$dir/log" >&2
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      [ -f "$a" ] && echo "[fuzz] reproduce: $build/bin/fuzz-$t $a" >&2
    done
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "[fuzz] FAILED: add each input above to test/fuzz/corpus/TARGET/regress-NAME with the fix" >&2
  exit 1
fi
echo "[fuzz] PASS: no findings in $((SECONDS - start)) s"
