//===- x86.cpp - the x86-64 targets (AVX2, AVX-512) -----------------------===//
//
// The schedules themselves are the CPU ones (Cpu.cpp); x86 picks the tile
// sizes per vector width (below). deltaflow-compile --tile NAME=VALUE
// overrides them (deltaflow-bench dense --sweep does), within the bounds of
// cpuTileParams().
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/Targets.h"

namespace deltaflow::compiler {

namespace {
bool avx512(const Halide::Target &t) { return t.natural_vector_size<float>() >= 16; }
} // namespace

// Defaults from `deltaflow-bench dense --sweep` (whole causal prefill,
// Llama-3-8B heads, 2 threads):
//  * AVX-512 (Zen 4/5, 32 zmm registers): 16 rows (one vector) x 4 heads x
//    4 keys for scores, 2 vectors x 4 rows x 2 heads for P.V.
//  * AVX2 (16 ymm registers; AMD EPYC, 2026-11-30): 8 rows x 4 heads x 2
//    keys and 2 vectors x 2 rows x 2 heads (8 accumulators each). The
//    AVX-512 tiles need 16 accumulators and spill here: 2864 ms at 4K
//    against 1720-1850 ms.
void registerX86Targets() {
  TargetFamily f;
  f.name = "x86-64";
  f.targets = {
      {"x86-64-avx2", "x86-64-linux-sse41-avx-f16c-fma-avx2", "c++",
       "x86-64 with AVX2, FMA and F16C (Haswell, Zen 1-3)"},
      {"x86-64-avx512",
       "x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake", "c++",
       "x86-64 with AVX-512 (Skylake-X, Zen 4/5)"}};
  f.tiles = cpuTileParams(/*arm64=*/false);
  f.claims = [](const Halide::Target &t) {
    return t.arch == Halide::Target::X86 && !t.has_gpu_feature();
  };
  f.prefillTiles = [](const Halide::Target &t, const AttentionSpec &) {
    PrefillTiles tiles;
    tiles.queryTile = tile(t, "prefill.query-tile", avx512(t) ? 16 : 8);
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
    rt.keysPerTile = tile(t, "prefill.keys-per-tile", avx512(t) ? 4 : 2);
    rt.pvVectors = tile(t, "pv.vectors", 2);
    rt.pvRows = tile(t, "pv.rows", avx512(t) ? 4 : 2);
    rt.pvHeads = tile(t, "pv.heads", 2);
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
    int vw = t.natural_vector_size<float>();
    // AVX-512: 2 x 16 lanes x 8 rows = 16 accumulators of 32 registers;
    // AVX2: 2 x 8 lanes x 6 rows = 12 of 16.
    m.tileW = 2 * vw;
    m.tileH = tile(t, "matmul.tile-rows", vw >= 16 ? 8 : 6);
    m.rowBlock = vw >= 16 ? 64 : 60;
    m.smallW = 4 * vw;
    return m;
  };
  registerTargetFamily(std::move(f));
}

} // namespace deltaflow::compiler
