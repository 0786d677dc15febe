#!/usr/bin/env bash
# The main job on the built-in example: parse, verify and print
# examples/attention.mlir through deltaflow-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
echo "[example] deltaflow-opt examples/attention.mlir -canonicalize"
./build/bin/deltaflow-opt examples/attention.mlir -canonicalize
