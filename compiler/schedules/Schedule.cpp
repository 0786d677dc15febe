//===- Schedule.cpp - schedule dispatch through the target table ----------===//
//
// Only the schedule differs between targets; the algorithm (compiler/Halide/
// AttentionPipeline.cpp) is shared. Each hook below asks the target table
// (Targets.h) for the family of the Halide target.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/Targets.h"

namespace deltaflow::compiler {

int vectorWidthFor(const Halide::Target &t, int64_t n) {
  int w = t.natural_vector_size<float>();
  while (w > 1 && n % w != 0)
    w /= 2;
  return w;
}

PrefillTiles choosePrefillTiles(const Halide::Target &t,
                                const AttentionSpec &spec) {
  return familyOf(t).prefillTiles(t, spec);
}

DecodeTiles chooseDecodeTiles(const Halide::Target &t,
                              const AttentionSpec &spec) {
  return familyOf(t).decodeTiles(t, spec);
}

void schedulePrefill(PrefillPipeline &p, const AttentionSpec &spec,
                     const Halide::Target &t) {
  familyOf(t).schedulePrefill(p, spec, t);
}

void scheduleDecode(DecodePipeline &p, const AttentionSpec &spec,
                    const Halide::Target &t) {
  familyOf(t).scheduleDecode(p, spec, t);
}

void scheduleDeltaCorrect(DeltaPipeline &p, int64_t dv,
                          const Halide::Target &t) {
  familyOf(t).scheduleDelta(p, dv, t);
}

void scheduleDeltaCorrectCpu(DeltaPipeline &p, int64_t dv,
                             const Halide::Target &t) {
  // Elementwise; the same shape of schedule fits every CPU target.
  const int ve = vectorWidthFor(t, dv);
  p.out.vectorize(p.e, ve).parallel(p.h);
  p.out.output_buffer().dim(0).set_bounds(0, int(dv));
}

} // namespace deltaflow::compiler
