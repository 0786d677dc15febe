//===- x86.cpp - tile sizes of the x86-64 schedules (AVX2, AVX-512) -------===//
//
// The schedules themselves are the CPU ones (Cpu.cpp); x86 picks the tile
// sizes per vector width (below). Benchmarks may override them without
// recompiling deltaflow (DELTAFLOW_PREFILL_TQ/BK/KEYS, DELTAFLOW_PV_*,
// DELTAFLOW_DECODE_CHUNK); a bad value is a one-line error.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

namespace deltaflow::compiler {

// Defaults from `deltaflow-bench dense --sweep` (whole causal prefill,
// Llama-3-8B heads, 2 threads):
//  * AVX-512 (Zen 4/5, 32 zmm registers): 16 rows (one vector) x 4 heads x
//    4 keys for scores, 2 vectors x 4 rows x 2 heads for P.V.
//  * AVX2 (16 ymm registers; AMD EPYC, 2026-11-30): 8 rows x 4 heads x 2
//    keys and 2 vectors x 2 rows x 2 heads (8 accumulators each). The
//    AVX-512 tiles need 16 accumulators and spill here: 2864 ms at 4K
//    against 1720-1850 ms.
PrefillTiles prefillTilesX86(const Halide::Target &t, const AttentionSpec &) {
  PrefillTiles tiles;
  const bool avx512 = t.natural_vector_size<float>() >= 16;
  tiles.queryTile = tileOverride("DELTAFLOW_PREFILL_TQ", avx512 ? 16 : 8, 1, 256);
  tiles.bitWidenF16 = true;
  tiles.keyBlock = tileOverride("DELTAFLOW_PREFILL_BK", 256, 1, 16384);
  return tiles;
}

DecodeTiles decodeTilesX86(const Halide::Target &, const AttentionSpec &) {
  DecodeTiles tiles;
  tiles.keyChunk = tileOverride("DELTAFLOW_DECODE_CHUNK", 1024, 1, 1 << 20);
  tiles.bitWidenF16 = true;
  return tiles;
}

CpuRegisterTiles registerTilesX86(const Halide::Target &t) {
  CpuRegisterTiles rt;
  const bool avx512 = t.natural_vector_size<float>() >= 16;
  rt.keysPerTile = tileOverride("DELTAFLOW_PREFILL_KEYS", avx512 ? 4 : 2, 1, 16);
  rt.pvVectors = tileOverride("DELTAFLOW_PV_VECTORS", 2, 1, 16);
  rt.pvRows = tileOverride("DELTAFLOW_PV_ROWS", avx512 ? 4 : 2, 1, 64);
  rt.pvHeads = tileOverride("DELTAFLOW_PV_HEADS", 2, 1, 16);
  return rt;
}

} // namespace deltaflow::compiler
