//===- arm64.cpp - the arm64 (NEON) target --------------------------------===//
//
// NEON has 32 128-bit registers (4 floats). The CPU schedules (Cpu.cpp) run
// with 8-query tiles (two vectors of rows) and register tiles of 8 rows x G
// heads x 2 keys, which stay within the register file for G <= 4; key
// blocks of 256 and split-K chunks of 1024 as on x86. Graph matmuls: 4
// vectors x 6 rows. --tile overrides them as on x86.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Targets.h"

namespace deltaflow::compiler {

void registerArm64Targets() {
  CpuTileDefaults d;
  d.arm64 = true;
  d.queryTile = [](const Halide::Target &) { return 8; };
  d.keysPerTile = [](const Halide::Target &) { return 2; };
  d.pvRows = [](const Halide::Target &) { return 4; };
  d.matmulTileRows = [](const Halide::Target &) { return 6; };
  d.matmulRowBlock = [](const Halide::Target &) { return 60; };
  d.matmulTileWVectors = 4;
  d.matmulSmallWVectors = 8;
  TargetFamily f = cpuTargetFamily(d);
  f.name = "arm64";
  // NEON is part of the base ARMv8-A target; dot-product and fp16
  // arithmetic do not help fp32 attention.
  f.targets = {{"arm64", "arm-64-linux", "aarch64-linux-gnu-g++",
                "ARMv8-A with NEON (cross-compiled; runs under qemu in CI)"}};
  f.claims = [](const Halide::Target &t) {
    return t.arch == Halide::Target::ARM && !t.has_gpu_feature();
  };
  registerTargetFamily(std::move(f));
}

} // namespace deltaflow::compiler
