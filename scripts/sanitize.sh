#!/usr/bin/env bash
# The sanitizer job (docs/hardening.md): builds the runtime, deltaflow-run,
# the runtime unit tests (the concurrency stress test among them) and the
# runtime fuzz targets' corpus replays with ASan and UBSan into build-asan/
# (clang, DELTAFLOW_RUNTIME_ONLY), runs them through CTest, then runs every lit
# test with a RUN line that calls deltaflow-run, with this deltaflow-run and
# the main build's compiler tools.
#
# Needs the main build (scripts/build.sh; build/ or MAIN_BUILD=DIR) with its
# test fixtures (test/unit/fixtures: built by `ninja` there). Any sanitizer
# report fails the job: UBSan and ASan abort at the first one
# (-fno-sanitize-recover, abort_on_error), leaks included.
#
#   scripts/sanitize.sh                 everything
#   SANITIZE_LIT=0 scripts/sanitize.sh  without the lit tests
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mlir_dir=$(./scripts/install-deps.sh | sed -n 's/^MLIR_DIR=//p')
llvm_root=${mlir_dir%/lib/cmake/mlir}   # /usr/lib/llvm-<pinned major>
jobs=${DELTAFLOW_JOBS:-2}
main=$(cd "${MAIN_BUILD:-build}" && pwd)
fixtures=$main/test/unit/fixtures
out=${ASAN_BUILD_DIR:-build-asan}
for f in tiny_llama.so tiny_llama_ts.so tiny_llama.safetensors attention_variants.so; do
  if [ ! -f "$fixtures/$f" ]; then
    echo "[sanitize] error: $fixtures/$f missing: build the main build first (scripts/build.sh)" >&2
    exit 1
  fi
done

start=$SECONDS
if [ ! -f "$out/build.ninja" ]; then
  echo "[sanitize] configuring $out/ (clang, address;undefined, runtime only)"
  CC="$llvm_root/bin/clang" CXX="$llvm_root/bin/clang++" \
    cmake -G Ninja -B "$out" -DCMAKE_BUILD_TYPE=Release \
    -DDELTAFLOW_RUNTIME_ONLY=ON "-DDELTAFLOW_SANITIZE=address;undefined" \
    -DDELTAFLOW_FIXTURE_DIR="$fixtures" -DDELTAFLOW_LIT_TOOLS_DIR="$main/bin" \
    -DDELTAFLOW_LLVM_TOOLS_DIR="$llvm_root/bin" >/dev/null
fi
echo "[sanitize] building with ninja -j$jobs"
set +e
ninja -C "$out" -j"$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[sanitize] build FAILED (ninja exit $status)" >&2
  exit "$status"
fi
echo "[sanitize] built in $((SECONDS - start)) s"

# abort_on_error: a report is a crash (SIGABRT), which `not` in a lit test
# does not take for the expected failure. No suppressions: none is needed.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
export LSAN_OPTIONS="abort_on_error=1"

t=$SECONDS
echo "[sanitize] unit tests and fuzz corpus replays (CTest in $out)"
(cd "$out" && ctest --output-on-failure -j"$jobs")
echo "[sanitize] CTest took $((SECONDS - t)) s"

if [ "${SANITIZE_LIT:-1}" != 0 ]; then
  t=$SECONDS
  # The lit tests that run deltaflow-run (a RUN line calling it).
  mapfile -t tests < <(cd test/lit && grep -rlE 'RUN:.*(^|[[:space:]|;(])deltaflow-run([[:space:]]|$)' \
    --include='*.test' --include='*.mlir' . | sed 's|^\./||' | sort)
  # Those on pocl run one at a time, after the others: two sanitized pocl
  # processes at once have failed clCreateContext (seen once in CI).
  mapfile -t pocl < <(cd test/lit && grep -lE '^REQUIRES:.*\bpocl\b' "${tests[@]}")
  filterOf() { echo "^DELTAFLOW :: ($(printf '%s\n' "$@" | sed 's/[.]/\\./g' | paste -sd'|'))\$"; }
  echo "[sanitize] ${#tests[@]} lit tests with the sanitized deltaflow-run (${#pocl[@]} on pocl, one at a time)"
  lit=("/usr/bin/python3" "$llvm_root/build/utils/lit/lit.py" -sv --time-tests)
  if [ "${#pocl[@]}" -gt 0 ]; then
    "${lit[@]}" -j"$jobs" --filter "$(filterOf "${tests[@]}")" --filter-out "$(filterOf "${pocl[@]}")" "$out/test/lit"
    "${lit[@]}" -j1 --filter "$(filterOf "${pocl[@]}")" "$out/test/lit"
  else
    "${lit[@]}" -j"$jobs" --filter "$(filterOf "${tests[@]}")" "$out/test/lit"
  fi
  echo "[sanitize] lit took $((SECONDS - t)) s"
fi
echo "[sanitize] PASS in $((SECONDS - start)) s"
