//===- arm64.cpp - the arm64 (NEON) target --------------------------------===//
//
// NEON has 32 128-bit registers (4 floats). The CPU schedules (Cpu.cpp) run
// with 8-query tiles (two vectors of rows) and register tiles of 8 rows x G
// heads x 2 keys, which stay within the register file for G <= 4; key
// blocks of 256 and split-K chunks of 1024 as on x86. The same tiles as
// x86 can be overridden with --tile.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/Targets.h"

namespace deltaflow::compiler {

void registerArm64Targets() {
  TargetFamily f;
  f.name = "arm64";
  // NEON is part of the base ARMv8-A target; dot-product and fp16
  // arithmetic do not help fp32 attention.
  f.targets = {{"arm64", "arm-64-linux", "aarch64-linux-gnu-g++",
                "ARMv8-A with NEON (cross-compiled; runs under qemu in CI)"}};
  f.tiles = cpuTileParams(/*arm64=*/true);
  f.claims = [](const Halide::Target &t) {
    return t.arch == Halide::Target::ARM && !t.has_gpu_feature();
  };
  f.prefillTiles = [](const Halide::Target &t, const AttentionSpec &) {
    PrefillTiles tiles;
    tiles.queryTile = tile(t, "prefill.query-tile", 8);
    tiles.keyBlock = tile(t, "prefill.key-block", 256);
    tiles.bitWidenF16 = true;
    return tiles;
  };
  f.decodeTiles = [](const Halide::Target &t, const AttentionSpec &) {
    DecodeTiles tiles;
    tiles.keyChunk = tile(t, "decode.key-chunk", 1024);
    tiles.bitWidenF16 = true;
    return tiles;
  };
  auto registers = [](const Halide::Target &t) {
    CpuRegisterTiles rt;
    rt.keysPerTile = tile(t, "prefill.keys-per-tile", 2);
    rt.pvVectors = tile(t, "pv.vectors", rt.pvVectors);
    rt.pvRows = tile(t, "pv.rows", rt.pvRows);
    rt.pvHeads = tile(t, "pv.heads", rt.pvHeads);
    return rt;
  };
  f.schedulePrefill = [registers](PrefillPipeline &p, const AttentionSpec &spec,
                                  const Halide::Target &t) {
    schedulePrefillCpu(p, spec, t, registers(t));
  };
  f.scheduleDecode = [registers](DecodePipeline &p, const AttentionSpec &spec,
                                 const Halide::Target &t) {
    scheduleDecodeCpu(p, spec, t, registers(t));
  };
  f.scheduleDelta = scheduleDeltaCorrectCpu;
  f.matmulTiles = [](const Halide::Target &t) {
    MatmulTiles m;
    int vw = t.natural_vector_size<float>(); // 4 lanes, 32 NEON registers
    m.tileW = 4 * vw;
    m.tileH = tile(t, "matmul.tile-rows", 6);
    m.rowBlock = 60;
    m.smallW = 8 * vw;
    return m;
  };
  registerTargetFamily(std::move(f));
}

} // namespace deltaflow::compiler
