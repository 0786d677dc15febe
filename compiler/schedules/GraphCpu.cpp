//===- GraphCpu.cpp - schedules of the fused TOSA kernels (CPU) -----------===//
//
// Matmul (prefill, >= rowBlock rows): tasks of rowBlock rows; inside one,
// the A operand (with whatever elementwise ops feed it: RMSNorm, a
// transposed attention output) is computed once for the block, then each
// tileW-column strip of B is swept by tileH x tileW register tiles (unrolled
// rows, vectorised columns) that stay in registers over the whole depth.
// The epilogue (residual add, SiLU*mul) is applied per register tile.
// Matmul (decode, < rowBlock rows): tasks of smallW columns, A at root.
// Reductions: one task per run of output elements, the reduced dimension
// innermost. Elementwise: vectorised innermost, parallel outer.
// A transposed B (an nn.Linear weight [out, in]) is packed per column strip
// (packB). Tile sizes per target: the family's matmulTiles hook (Targets.h).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/Targets.h"

#include <cstdlib>
#include <stdexcept>

namespace deltaflow::compiler {

using Halide::TailStrategy;
using Halide::Var;

namespace {

/// The target family's matmul tiles (schedules/x86.cpp, arm64.cpp).
MatmulTiles tilesFor(const Halide::Target &t) {
  const TargetFamily &f = familyOf(t);
  if (!f.matmulTiles)
    throw std::runtime_error("graph ops (TOSA) have no " + f.name +
                             " schedule yet; compile model graphs for a CPU "
                             "target");
  return f.matmulTiles(t);
}

bool tiledMatmul(const GraphPipeline &p, const MatmulTiles &m) {
  return p.anchor == GraphPipeline::Anchor::Matmul && p.matmulW > 0 &&
         p.matmulW % m.tileW == 0 && p.matmulW % m.smallW == 0;
}

/// Innermost vectorisation that is safe for the output's static extent.
void vectorizeInner(Halide::Func f, const Var &v, int64_t extent, int vw) {
  if (extent >= 0 && extent < vw)
    return;
  f.vectorize(v, vw, extent >= 0 && extent % vw == 0 ? TailStrategy::Auto
                                                     : TailStrategy::GuardWithIf);
}

/// Parallel over one outer dimension, in tasks of 8: the dynamic one (the
/// token count) or else the largest. Dimensions are not fused: bounds
/// inference could then not narrow an anchor computed per task.
void parallelOuter(GraphPipeline &p, Var &task) {
  std::vector<Var> &v = p.vars;
  const std::vector<int64_t> &shape = p.shape; // outermost first
  if (v.size() < 2) {
    task = v[0];
    return;
  }
  size_t best = 1;
  auto extent = [&](size_t d) { return shape[shape.size() - 1 - d]; };
  for (size_t d = 1; d < v.size(); ++d) {
    int64_t e = extent(d), b = extent(best);
    if ((e < 0 && b >= 0) || (e >= 0 && b >= 0 && e > b))
      best = d;
  }
  // GuardWithIf: the extent may be smaller than the task size (decode).
  Var inner("task_rows");
  p.out.split(v[best], v[best], inner, 8, TailStrategy::GuardWithIf)
      .parallel(v[best]);
  task = v[best];
}

/// A transposed B (nn.Linear's [out, in], rows contiguous in the depth) is
/// packed per column strip into [depth, strip] (columns innermost) for the
/// register tiles' vector loads: BLAS's packing, once per strip and task.
/// Each packed element is read from the weight once per task: about a
/// quarter of the tile's vector FMAs at a 64-row block, and the weight's
/// f16/bf16 widening happens here.
void packB(GraphPipeline &p, const Var &strip, int vw) {
  if (!p.matmulBTransposed)
    return;
  Halide::Func b = p.matmulB;
  p.matmulB.compute_at(p.out, strip).vectorize(b.args()[0], vw,
                                               TailStrategy::GuardWithIf);
}

} // namespace

int graphSmallRowsLimit(const GraphPipeline &p, const Halide::Target &t) {
  if (const TargetFamily &f = familyOf(t); f.graphSmallRowsLimit)
    return f.graphSmallRowsLimit(p, t);
  MatmulTiles m = tilesFor(t);
  return tiledMatmul(p, m) ? m.rowBlock - 1 : -1;
}

void scheduleGraph(GraphPipeline &p, const Halide::Target &t, bool smallRows) {
  if (const TargetFamily &f = familyOf(t); f.scheduleGraph) {
    f.scheduleGraph(p, t, smallRows);
    return;
  }
  const int vw = t.natural_vector_size<float>();
  const int64_t inner = p.shape.empty() ? 1 : p.shape.back();
  MatmulTiles m = tilesFor(t);

  if (p.anchor == GraphPipeline::Anchor::Matmul && tiledMatmul(p, m)) {
    Var w = p.vars[0], h = p.vars[1], n = p.vars[2];
    Var mw = p.anchorVars[0], mh = p.anchorVars[1], mn = p.anchorVars[2];
    Var wo("wo"), wi("wi"), ho("ho"), hi("hi"), ht("ht"), h1("h1"), wl("wl"),
        wv("wv");
    Halide::Func mm = p.anchorFunc;
    if (smallRows && p.matmulBTransposed && p.matmulC % vw == 0) {
      // Decode over a transposed B: each column is a dot product along the
      // depth, which is contiguous in both A and B. rfactor keeps vw
      // partial sums per column (vector loads of both rows, widening a
      // bf16/f16 weight in registers), four columns at a time for
      // independent accumulators; one horizontal sum per column at the end.
      p.out.split(w, wo, wi, m.smallW)
          .reorder(wi, h, wo, n)
          .vectorize(wi, vw)
          .parallel(wo);
      mm.compute_at(p.out, wo);
      Halide::RVar ro("ro"), ri("ri");
      Var u("u"), wc("wc"), wt("wt");
      // rfactor appends u to mm's pure vars: part(w, h, n, u).
      Halide::Func part = mm.update().split(p.r.x, ro, ri, vw).rfactor(ri, u);
      Var pw = part.args()[0];
      part.compute_at(p.out, wo).reorder_storage(u, pw).reorder(u, pw).vectorize(u);
      part.update()
          .split(pw, wc, wt, 4, TailStrategy::GuardWithIf)
          .reorder(u, wt, ro, wc)
          .vectorize(u)
          .unroll(wt);
      if (!p.matmulAIsInput)
        p.matmulA.compute_root().vectorize(p.matmulA.args()[0], vw,
                                           TailStrategy::GuardWithIf);
      return;
    }
    // Both variants: the depth loop outside a row x vectors register tile.
    Halide::Stage update = mm.update();
    update.split(mw, wv, wl, vw)
        .reorder(wl, wv, mh, p.r.x, mn)
        .vectorize(wl)
        .unroll(wv);
    if (smallRows) {
      p.out.split(w, wo, wi, m.smallW)
          .reorder(wi, h, wo, n)
          .vectorize(wi, vw)
          .parallel(wo);
      mm.compute_at(p.out, wo).vectorize(mw, vw);
      packB(p, wo, vw);
      if (!p.matmulAIsInput)
        p.matmulA.compute_root().vectorize(p.matmulA.args()[0], vw,
                                           TailStrategy::GuardWithIf);
      return;
    }
    p.out.split(h, ht, h1, m.rowBlock, TailStrategy::ShiftInwards)
        .split(w, wo, wi, m.tileW)
        .split(h1, ho, hi, m.tileH)
        .reorder(wi, hi, ho, wo, ht, n)
        .vectorize(wi, vw)
        .unroll(hi);
    Var task("task");
    p.out.fuse(ht, n, task).parallel(task);
    mm.compute_at(p.out, ho).vectorize(mw, vw).unroll(mh);
    packB(p, wo, vw);
    update.unroll(mh);
    if (!p.matmulAIsInput)
      p.matmulA.compute_at(p.out, task).vectorize(p.matmulA.args()[0], vw);
    return;
  }

  const bool matmul = p.anchor == GraphPipeline::Anchor::Matmul;
  if (matmul || p.anchor == GraphPipeline::Anchor::Reduce) {
    // The untiled matmul fallback (dynamic or unaligned columns: correct for
    // any shape) and reductions: the anchor per task, vectorised over its
    // innermost pure dim unless that is the reduced one.
    Var task;
    vectorizeInner(p.out, p.vars[0], inner, vw);
    parallelOuter(p, task);
    p.anchorFunc.compute_at(p.out, task);
    if (matmul || p.reduceAxis != 0)
      p.anchorFunc.update().vectorize(p.anchorVars[0], vw,
                                      TailStrategy::GuardWithIf);
    if (matmul && !p.matmulAIsInput)
      p.matmulA.compute_at(p.out, task);
    return;
  }

  Var task;
  vectorizeInner(p.out, p.vars[0], inner, vw);
  parallelOuter(p, task);
}

} // namespace deltaflow::compiler
