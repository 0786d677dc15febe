//===- GraphGpu.cpp - schedules of the fused TOSA kernels (GPU) -----------===//
//
// The graph kernels of a model (projections, RMSNorm, RoPE, SwiGLU, the
// embedding gather, the logits) on a GPU through Halide's CUDA (or OpenCL)
// back end, in f32 on the SIMT units: issue #14's stage 4, first step (the
// whole model on the GPU; the projections' tensor-core GEMM tiles are the
// next one).
//   - A matmul whose output is [N, H, W] with W a multiple of kTileW, from
//     kTileH rows on (prefill): blocks of kTileH x kTileW outputs, 256
//     threads each computing a 4 x 4 register tile of the matmul over the
//     whole depth (16 FMAs per 4 + 4 loads), the epilogue applied per tile.
//     This is the tiled variant; the runtime picks it by the row count.
//   - Otherwise (decode's few rows, reductions): the anchor (matmul or
//     reduction) is its own kernel, one thread per output element with its
//     reduction a serial loop in the thread; threads run along the
//     innermost dimension (a matmul's columns), so B in [depth, W] layout is
//     read coalesced and a transposed B (nn.Linear's [out, in]) row by row
//     through L1. The output (with the elementwise epilogue) is one flat
//     kernel over all its elements.
//   - A matmul's A operand, when computed (RMSNorm feeding a projection), is
//     a kernel of its own, so that it is not recomputed per output tile.
//   - A gather's index check (an out-of-range token is an error) runs on the
//     host before the kernels: a GPU kernel cannot raise it.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"

namespace deltaflow::compiler {

using Halide::TailStrategy;
using Halide::Var;

namespace {

constexpr int kThreads = 256;
/// The tiled matmul's block (rows x columns) and per-thread register tile.
constexpr int kTileH = 64, kTileW = 64, kReg = 4;
static_assert((kTileH / kReg) * (kTileW / kReg) == kThreads, "one thread per register tile");

/// `s`'s pure vars `vars` (innermost first) fused into one and split into
/// blocks of kThreads GPU threads.
void gpuFlat(Halide::Stage s, const std::vector<Var> &vars) {
  Halide::VarOrRVar x = vars.at(0);
  for (size_t i = 1; i < vars.size(); ++i) {
    Var fused(vars[0].name() + "_f" + std::to_string(i));
    s.fuse(x, vars[i], fused);
    x = fused;
  }
  Var block("gpu_block"), thread("gpu_thread");
  s.gpu_tile(x, block, thread, kThreads, TailStrategy::GuardWithIf);
}

/// A matmul the tiled schedule covers: out is [N, H, W] over the matmul's
/// [N, H, W], W static and a multiple of the tile.
bool tiled(const GraphPipeline &p) {
  return p.anchor == GraphPipeline::Anchor::Matmul && p.vars.size() == 3 &&
         p.matmulW > 0 && p.matmulW % kTileW == 0 && !p.shape.empty() &&
         p.shape.back() == p.matmulW;
}

} // namespace

int graphSmallRowsLimitGpu(const GraphPipeline &p, const Halide::Target &) {
  return tiled(p) ? kTileH - 1 : -1;
}

void scheduleGraphGpu(GraphPipeline &p, const Halide::Target &, bool smallRows) {
  // Checks that raise a run's error (a gather's indices) run on the host.
  for (Halide::Func &f : p.hostChecks)
    f.compute_root();
  if (p.anchor == GraphPipeline::Anchor::Matmul && !p.matmulAIsInput) {
    p.matmulA.compute_root();
    gpuFlat(p.matmulA, p.matmulA.args());
  }
  if (tiled(p) && !smallRows) {
    Var w = p.vars[0], h = p.vars[1], n = p.vars[2];
    Var wo("wo"), wi("wi"), ho("ho"), hi("hi"), wt("wt"), wr("wr"), ht("ht"), hr("hr");
    p.out.split(w, wo, wi, kTileW)
        .split(h, ho, hi, kTileH, TailStrategy::GuardWithIf)
        .split(wi, wt, wr, kReg)
        .split(hi, ht, hr, kReg)
        .reorder(wr, hr, wt, ht, wo, ho, n)
        .gpu_blocks(wo, ho, n)
        .gpu_threads(wt, ht)
        .unroll(wr)
        .unroll(hr);
    // The thread's 4 x 4 matmul tile in registers, the depth loop outside it.
    Halide::Func mm = p.anchorFunc;
    Var mw = p.anchorVars[0], mh = p.anchorVars[1];
    mm.compute_at(p.out, wt).store_in(Halide::MemoryType::Register);
    mm.unroll(mw).unroll(mh);
    mm.update().reorder(mw, mh, p.r.x).unroll(mw).unroll(mh);
    return;
  }
  if (p.anchor != GraphPipeline::Anchor::None) {
    Halide::Func a = p.anchorFunc;
    a.compute_root();
    gpuFlat(a, p.anchorVars);
    gpuFlat(a.update(), p.anchorVars);
  }
  gpuFlat(p.out, p.vars);
}

} // namespace deltaflow::compiler
