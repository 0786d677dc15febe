//===- arm64.cpp - tile sizes of the arm64 (NEON) schedules ---------------===//
//
// NEON has 32 128-bit registers (4 floats). The CPU schedules (Cpu.cpp) run
// with 8-query tiles (two vectors of rows) and register tiles of 8 rows x G
// heads x 2 keys, which stay within the register file for G <= 4; key
// blocks of 256 and split-K chunks of 1024 as on x86.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

namespace deltaflow::compiler {

PrefillTiles prefillTilesArm64(const Halide::Target &, const AttentionSpec &) {
  PrefillTiles tiles;
  tiles.queryTile = 8;
  tiles.bitWidenF16 = true;
  tiles.keyBlock = 256;
  return tiles;
}

DecodeTiles decodeTilesArm64(const Halide::Target &, const AttentionSpec &) {
  DecodeTiles tiles;
  tiles.keyChunk = 1024;
  tiles.bitWidenF16 = true;
  return tiles;
}

CpuRegisterTiles registerTilesArm64(const Halide::Target &) {
  CpuRegisterTiles rt;
  rt.keysPerTile = 2;
  return rt;
}

} // namespace deltaflow::compiler
