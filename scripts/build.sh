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
ninja -C build -j"$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Generating|Automatic)' || true
test "${PIPESTATUS[0]}" -eq 0
