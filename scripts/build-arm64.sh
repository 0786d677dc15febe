#!/usr/bin/env bash
# Cross-builds the runtime and deltaflow-run for aarch64 into build-arm64/
# (one line of CMake: the toolchain file plus DELTAFLOW_RUNTIME_ONLY). Modules
# for it come from `deltaflow-compile --target=arm64`; run them with
#   qemu-aarch64-static -L /usr/aarch64-linux-gnu build-arm64/bin/deltaflow-run M.so ...
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >/dev/null
if [ ! -f build-arm64/build.ninja ]; then
  echo "[build-arm64] configuring build-arm64/"
  cmake -G Ninja -B build-arm64 -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DDELTAFLOW_RUNTIME_ONLY=ON >/dev/null
fi
echo "[build-arm64] building with ninja -j${DELTAFLOW_JOBS:-2}"
ninja -C build-arm64 -j"${DELTAFLOW_JOBS:-2}" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true
test -x build-arm64/bin/deltaflow-run
