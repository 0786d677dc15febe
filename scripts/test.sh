#!/usr/bin/env bash
# Builds deltaflow (installing what it needs) and runs every test: lit +
# FileCheck (test/lit, including arm64 modules under qemu) and GoogleTest
# (test/unit), through one CTest call.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
./scripts/build-arm64.sh   # aarch64 runtime: the arm64 tests run it under qemu
cd build
ctest --output-on-failure -j2 "$@"
