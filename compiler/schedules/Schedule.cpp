//===- Schedule.cpp - schedule dispatch by target -------------------------===//
//
// cuda -> arm64 -> x86. Only the schedule differs between targets; the
// algorithm (compiler/Halide/AttentionPipeline.cpp) is shared.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

#include <stdexcept>

namespace deltaflow::compiler {

namespace {
void requireX86(const Halide::Target &t) {
  if (t.arch != Halide::Target::X86)
    throw std::runtime_error("no attention schedule for target '" +
                             t.to_string() + "' yet (x86-64 only)");
}
} // namespace

int vectorWidthFor(const Halide::Target &t, int64_t n) {
  int w = t.natural_vector_size<float>();
  while (w > 1 && n % w != 0)
    w /= 2;
  return w;
}

PrefillTiles choosePrefillTiles(const Halide::Target &t,
                                const AttentionSpec &spec) {
  requireX86(t);
  return prefillTilesX86(t, spec);
}

DecodeTiles chooseDecodeTiles(const Halide::Target &t,
                              const AttentionSpec &spec) {
  requireX86(t);
  return decodeTilesX86(t, spec);
}

void schedulePrefill(PrefillPipeline &p, const AttentionSpec &spec,
                     const Halide::Target &t) {
  requireX86(t);
  schedulePrefillX86(p, spec, t);
}

void scheduleDecode(DecodePipeline &p, const AttentionSpec &spec,
                    const Halide::Target &t) {
  requireX86(t);
  scheduleDecodeX86(p, spec, t);
}

void scheduleDeltaCorrect(DeltaPipeline &p, int64_t dv,
                          const Halide::Target &t) {
  // Elementwise; the same shape of schedule fits every CPU target.
  const int ve = vectorWidthFor(t, dv);
  p.out.vectorize(p.e, ve).parallel(p.h);
  p.out.output_buffer().dim(0).set_bounds(0, int(dv));
}

} // namespace deltaflow::compiler
