#!/usr/bin/env bash
# Builds deltaflow (installing what it needs) and runs every test: lit +
# FileCheck (test/lit) and GoogleTest (test/unit), through one CTest call.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j2 "$@"
