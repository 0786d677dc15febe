//===- x86.cpp - the x86-64 targets (AVX2, AVX-512) -----------------------===//
//
// The schedules are the CPU ones (Cpu.cpp); x86 picks the tile sizes per
// vector width. deltaflow-compile --tile NAME=VALUE overrides them
// (deltaflow-bench dense --sweep does).
//
//===----------------------------------------------------------------------===//

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
//  * Graph matmuls: AVX-512 2 x 16 lanes x 8 rows = 16 accumulators of 32
//    registers; AVX2 2 x 8 lanes x 6 rows = 12 of 16.
void registerX86Targets() {
  CpuTileDefaults d;
  d.queryTile = [](const Halide::Target &t) { return avx512(t) ? 16 : 8; };
  d.keysPerTile = [](const Halide::Target &t) { return avx512(t) ? 4 : 2; };
  d.pvRows = [](const Halide::Target &t) { return avx512(t) ? 4 : 2; };
  d.matmulTileRows = [](const Halide::Target &t) { return avx512(t) ? 8 : 6; };
  d.matmulRowBlock = [](const Halide::Target &t) { return avx512(t) ? 64 : 60; };
  TargetFamily f = cpuTargetFamily(d);
  f.name = "x86-64";
  f.targets = {
      {"x86-64-avx2", "x86-64-linux-sse41-avx-f16c-fma-avx2", "c++",
       "x86-64 with AVX2, FMA and F16C (Haswell, Zen 1-3)"},
      {"x86-64-avx512",
       "x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake", "c++",
       "x86-64 with AVX-512 (Skylake-X, Zen 4/5)"}};
  f.claims = [](const Halide::Target &t) {
    return t.arch == Halide::Target::X86 && !t.has_gpu_feature();
  };
  registerTargetFamily(std::move(f));
}

} // namespace deltaflow::compiler
