//===- Schedule.h - per-target schedules for attention ----------*- C++ -*-===//
#ifndef DELTAFLOW_COMPILER_SCHEDULE_H
#define DELTAFLOW_COMPILER_SCHEDULE_H

#include "deltaflow/Compiler/AttentionPipeline.h"

#include <optional>
#include <stdexcept>

namespace deltaflow::compiler {

/// A target's schedule cannot handle this op's shape (the compiler reports it
/// at the op's location).
struct UnsupportedShape : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Tile shapes the target's schedule wants the algorithm written over.
PrefillTiles choosePrefillTiles(const Halide::Target &t, const AttentionSpec &spec);
DecodeTiles chooseDecodeTiles(const Halide::Target &t, const AttentionSpec &spec);

/// THE SCHEDULE: dispatches through the target table (Targets.h) to the
/// family's own file (schedules/x86.cpp, arm64.cpp, cuda.cpp).
void schedulePrefill(PrefillPipeline &p, const AttentionSpec &spec,
                     const Halide::Target &t);
void scheduleDecode(DecodePipeline &p, const AttentionSpec &spec,
                    const Halide::Target &t);

void scheduleDeltaCorrect(DeltaPipeline &p, int64_t dv, const Halide::Target &t);

/// Register-tile sizes of the CPU schedules.
/// Accumulators live in vector registers: AVX-512 and NEON have 32, AVX2
/// 16, so the tiles a target picks must leave registers for the operands
/// (scores: rows/lanes x heads x keys; P.V: pvVectors x pvRows x pvHeads).
struct CpuRegisterTiles {
  int keysPerTile = 4; ///< keys per unrolled score tile (prefill)
  int pvVectors = 2;   ///< value-dim vectors per P.V register tile
  int pvRows = 4;      ///< query rows per P.V register tile
  int pvHeads = 2;     ///< heads of the group per P.V register tile
};

/// The CPU schedules (schedules/Cpu.cpp), shared by x86-64 and arm64.
void schedulePrefillCpu(PrefillPipeline &p, const AttentionSpec &spec,
                        const Halide::Target &t, const CpuRegisterTiles &rt);
void scheduleDecodeCpu(DecodePipeline &p, const AttentionSpec &spec,
                       const Halide::Target &t, const CpuRegisterTiles &rt);

/// Δ's combination on CPU targets (elementwise, vectorised over Dv).
void scheduleDeltaCorrectCpu(DeltaPipeline &p, int64_t dv, const Halide::Target &t);

/// GPU building blocks (schedules/cuda.cpp), shared with the selections.
/// `dot(key, head, ...) += q(rd, head) * k(rd, key)` over a block of keys
/// computed at `at`: 32 head-dim lanes per key row (coalesced reads), each
/// lane's partials for every head in registers, summed through shared memory
/// padded to 33 words per row. Threads: 128 x 4. `between` lists pure vars
/// of `dot` other than key and head that have extent 1 at `at`.
void scheduleGpuLaneDots(Halide::Func dot, Halide::RVar rd, Halide::Var key,
                         Halide::Var head, const Halide::LoopLevel &at,
                         const std::vector<Halide::VarOrRVar> &between = {});
/// `f(head[, row], ...) = max or sum over r`: 32 lanes per (head, row)
/// reduce a strided share each, then one thread per (head, row) the lanes.
void scheduleGpuLaneReduce(Halide::Func f, Halide::RVar r,
                           const Halide::LoopLevel &at, Halide::Var head,
                           std::optional<Halide::Var> row = std::nullopt);
/// Largest power of two <= natural vector width that divides n.
int vectorWidthFor(const Halide::Target &t, int64_t n);

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_SCHEDULE_H
