#!/usr/bin/env bash
# Installs dependencies (if missing), configures and builds deltaflow into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
mlir_dir=$(./scripts/install-deps.sh | sed -n 's/^MLIR_DIR=//p')
jobs=${DELTAFLOW_JOBS:-2}
if [ ! -f build/build.ninja ]; then
  echo "[build] configuring build/ (MLIR_DIR=$mlir_dir)"
  cmake -G Ninja -B build -DCMAKE_BUILD_TYPE=Release -DMLIR_DIR="$mlir_dir" >/dev/null
fi
echo "[build] building with ninja -j$jobs"
set +e
ninja -C build -j"$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Generating|Automatic)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[build] FAILED (ninja exit $status)" >&2
  exit "$status"
fi
