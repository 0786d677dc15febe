//===- x86.cpp - tile sizes of the x86-64 schedules (AVX2, AVX-512) -------===//
//
// The schedules themselves are the CPU ones (Cpu.cpp); x86 picks 16-query
// tiles (one AVX-512 vector of rows), 256-key blocks, and register tiles of
// 16 rows x G heads x 4 keys (2 keys with 8-lane AVX2). Benchmarks may
// override the sizes without recompiling deltaflow.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

#include <cstdlib>

namespace deltaflow::compiler {

namespace {
int envInt(const char *name, int fallback) {
  const char *s = std::getenv(name);
  return s && *s ? std::atoi(s) : fallback;
}
} // namespace

PrefillTiles prefillTilesX86(const Halide::Target &, const AttentionSpec &) {
  PrefillTiles tiles;
  tiles.queryTile = envInt("DELTAFLOW_PREFILL_TQ", 16);
  tiles.keyBlock = envInt("DELTAFLOW_PREFILL_BK", 256);
  return tiles;
}

DecodeTiles decodeTilesX86(const Halide::Target &, const AttentionSpec &) {
  DecodeTiles tiles;
  tiles.keyChunk = envInt("DELTAFLOW_DECODE_CHUNK", 1024);
  return tiles;
}

CpuRegisterTiles registerTilesX86(const Halide::Target &t) {
  CpuRegisterTiles rt;
  rt.keysPerTile =
      envInt("DELTAFLOW_PREFILL_KEYS", t.natural_vector_size<float>() >= 16 ? 4 : 2);
  return rt;
}

} // namespace deltaflow::compiler
