#!/usr/bin/env bash
# Builds deltaflow (installing what it needs) and runs every test: lit +
# FileCheck (test/lit, including arm64 modules under qemu) and GoogleTest
# (test/unit), through one CTest call; then the sanitizer job
# (scripts/sanitize.sh: the runtime, its tests and the runtime-side lit tests
# under ASan + UBSan) and 60 s of fuzzing per fuzz target (scripts/fuzz.sh).
# HARDENING=0 skips those two. Arguments go to CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
./scripts/build-arm64.sh   # aarch64 runtime: the arm64 tests run it under qemu
t=$SECONDS
(cd build && ctest --output-on-failure -j2 "$@")
echo "[test] ctest took $((SECONDS - t)) s"
if [ "${HARDENING:-1}" != 0 ]; then
  t=$SECONDS
  ./scripts/sanitize.sh
  echo "[test] sanitize.sh took $((SECONDS - t)) s"
  t=$SECONDS
  ./scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
  echo "[test] fuzz.sh took $((SECONDS - t)) s"
fi
