#!/usr/bin/env bash
# Installs deltaflow's build, test and benchmark dependencies from Debian bookworm.
# Idempotent: when every package is already present it only checks and returns.
# The MLIR/LLVM major version is pinned here and nowhere else (CMake reads it
# from the MLIR_DIR this script prints).
set -euo pipefail

MLIR_MAJOR=19

PKGS=(
  # MLIR/LLVM (compiler) with lit and FileCheck
  "libmlir-${MLIR_MAJOR}-dev" "mlir-${MLIR_MAJOR}-tools" "llvm-${MLIR_MAJOR}-dev" "llvm-${MLIR_MAJOR}-tools"
  # Halide 14 (kernel generation) -- built on LLVM 14, lives beside LLVM 19
  libhalide14-0-dev
  # oneTBB (runtime)
  libtbb-dev
  # tests, benchmarks, helpers
  libgtest-dev libbenchmark-dev nlohmann-json3-dev libopenblas-dev
  cmake ninja-build g++ python3 python3-numpy zlib1g-dev libzstd-dev
  # plots of the benchmarks (bench/fidelity)
  python3-matplotlib
  # arm64: cross compiler, emulator for the tests, oneTBB for aarch64 (multiarch)
  g++-aarch64-linux-gnu qemu-user-static libtbb-dev:arm64
  # GPU schedules without a GPU: OpenCL on the CPU
  pocl-opencl-icd ocl-icd-libopencl1
  # context parallelism across CPU processes (deltaflow-run shard)
  libopenmpi-dev openmpi-bin
  # sanitizers and libFuzzer (scripts/sanitize.sh, scripts/fuzz.sh)
  "clang-${MLIR_MAJOR}" "libclang-rt-${MLIR_MAJOR}-dev"
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#PKGS[@]} packages present (MLIR ${MLIR_MAJOR}, Halide 14, oneTBB)"
else
  echo "[deps] installing ${#missing[@]} missing package(s): ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "[deps] done"
fi
echo "MLIR_DIR=/usr/lib/llvm-${MLIR_MAJOR}/lib/cmake/mlir"
