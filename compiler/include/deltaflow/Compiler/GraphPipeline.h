//===- GraphPipeline.h - Halide algorithm for fused TOSA kernels -*- C++ -*-===//
//
// A graph kernel (KernelDesc::graph) becomes one Halide pipeline: a Func per
// node, inlined by default, with at most one anchor (matmul or reduction)
// that the schedule places inside the output's tiles. The schedules live in
// schedules/GraphCpu.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_GRAPHPIPELINE_H
#define DELTAFLOW_COMPILER_GRAPHPIPELINE_H

#include "deltaflow/Compiler/HalideCommon.h"
#include "deltaflow/Compiler/KernelSpec.h"

#include "Halide.h"

namespace deltaflow::compiler {

struct GraphPipeline {
  std::vector<Halide::ImageParam> inputs; ///< in KernelDesc::inputs order
  Halide::Func out{"out"};
  std::vector<Halide::Var> vars;          ///< out's, innermost first
  std::vector<int64_t> shape;             ///< out's, outermost first (-1: dynamic)

  enum class Anchor { None, Matmul, Reduce } anchor = Anchor::None;
  Halide::Func anchorFunc;                ///< the matmul or reduction
  std::vector<Halide::Var> anchorVars;    ///< its pure vars, innermost first
  Halide::RDom r;                         ///< its reduction domain
  /// Matmul: the A operand as its own Func (inlined unless scheduled), and
  /// whether A is a plain input buffer (nothing to precompute).
  Halide::Func matmulA;
  bool matmulAIsInput = true;
  /// The B operand, inlined unless the schedule packs it. It is stored
  /// transposed ([.., W, C], rows contiguous in the depth: the
  /// `y = x W^T` of a Hugging Face nn.Linear weight `[out, in]`) when
  /// matmulBTransposed; the schedule then packs one column strip at a time.
  Halide::Func matmulB;
  bool matmulBTransposed = false;
  int64_t matmulW = -1, matmulC = -1;     ///< static output columns, depth
  int reduceAxis = -1;                    ///< Halide dim reduced (Reduce)
  /// Funcs that raise a run's error (tosa.gather's index check): inlined on
  /// a CPU, computed on the host by a GPU schedule.
  std::vector<Halide::Func> hostChecks;
};

/// Builds the algorithm; throws std::runtime_error naming `where` for a node
/// the lowering cannot express.
GraphPipeline buildGraph(const GraphSpec &g, const std::string &where);

/// Register and cache tiles of the matmul schedule (per target).
struct MatmulTiles {
  int tileW = 32;   ///< output columns per register tile (vectors x lanes)
  int tileH = 8;    ///< output rows per register tile
  int rowBlock = 64; ///< rows sharing one B panel; also the parallel grain
  int smallW = 64;  ///< columns per task when rows < rowBlock (decode)
};

/// THE SCHEDULE for graph kernels. `smallRows`: the variant for fewer than
/// rowBlock output rows (decode); otherwise at least rowBlock rows.
void scheduleGraph(GraphPipeline &p, const Halide::Target &t, bool smallRows);
/// The GPU graph schedule and its small-rows limit (schedules/GraphGpu.cpp):
/// the GPU family's hooks.
void scheduleGraphGpu(GraphPipeline &p, const Halide::Target &t, bool smallRows);
int graphSmallRowsLimitGpu(const GraphPipeline &p, const Halide::Target &t);
/// Whether the kernel gets a small-rows variant (matmuls with static,
/// tile-aligned columns), and its row limit.
int graphSmallRowsLimit(const GraphPipeline &p, const Halide::Target &t);

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_GRAPHPIPELINE_H
