//===- Schedule.cpp - schedule dispatch by target -------------------------===//
//
// x86-64 and arm64 share the CPU schedules (Cpu.cpp) with their own tile
// sizes (x86.cpp, arm64.cpp). Only the schedule differs between targets; the
// algorithm (compiler/Halide/AttentionPipeline.cpp) is shared.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace deltaflow::compiler {

namespace {
bool isArm(const Halide::Target &t) { return t.arch == Halide::Target::ARM; }
void requireCpu(const Halide::Target &t) {
  if (t.arch != Halide::Target::X86 && t.arch != Halide::Target::ARM)
    throw std::runtime_error("no attention schedule for target '" +
                             t.to_string() + "' (x86-64 and arm64 only)");
}
CpuRegisterTiles registerTiles(const Halide::Target &t) {
  return isArm(t) ? registerTilesArm64(t) : registerTilesX86(t);
}
} // namespace

int tileOverride(const char *name, int fallback, int lo, int hi) {
  const char *s = std::getenv(name);
  if (!s || !*s)
    return fallback;
  errno = 0;
  char *end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi)
    throw std::runtime_error(std::string(name) + "='" + s +
                             "': a tile size must be an integer in [" +
                             std::to_string(lo) + ", " + std::to_string(hi) +
                             "]");
  return int(v);
}

int vectorWidthFor(const Halide::Target &t, int64_t n) {
  int w = t.natural_vector_size<float>();
  while (w > 1 && n % w != 0)
    w /= 2;
  return w;
}

PrefillTiles choosePrefillTiles(const Halide::Target &t,
                                const AttentionSpec &spec) {
  if (t.has_gpu_feature())
    return prefillTilesCuda(t, spec);
  requireCpu(t);
  return isArm(t) ? prefillTilesArm64(t, spec) : prefillTilesX86(t, spec);
}

DecodeTiles chooseDecodeTiles(const Halide::Target &t,
                              const AttentionSpec &spec) {
  if (t.has_gpu_feature())
    return decodeTilesCuda(t, spec);
  requireCpu(t);
  return isArm(t) ? decodeTilesArm64(t, spec) : decodeTilesX86(t, spec);
}

void schedulePrefill(PrefillPipeline &p, const AttentionSpec &spec,
                     const Halide::Target &t) {
  if (t.has_gpu_feature())
    return schedulePrefillCuda(p, spec, t);
  requireCpu(t);
  schedulePrefillCpu(p, spec, t, registerTiles(t));
}

void scheduleDecode(DecodePipeline &p, const AttentionSpec &spec,
                    const Halide::Target &t) {
  if (t.has_gpu_feature())
    return scheduleDecodeCuda(p, spec, t);
  requireCpu(t);
  scheduleDecodeCpu(p, spec, t, registerTiles(t));
}

void scheduleDeltaCorrect(DeltaPipeline &p, int64_t dv,
                          const Halide::Target &t) {
  if (t.has_gpu_feature())
    return scheduleDeltaCorrectCuda(p, dv);
  // Elementwise; the same shape of schedule fits every CPU target.
  const int ve = vectorWidthFor(t, dv);
  p.out.vectorize(p.e, ve).parallel(p.h);
  p.out.output_buffer().dim(0).set_bounds(0, int(dv));
}

} // namespace deltaflow::compiler
