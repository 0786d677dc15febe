//===- GraphGpu.cpp - schedules of the fused TOSA kernels (GPU) -----------===//
//
// The graph kernels of a model (projections, RMSNorm, RoPE, SwiGLU, the
// embedding gather, the logits) on a GPU through Halide's CUDA (or OpenCL)
// back end, in f32 on the SIMT units: issue #14's stage 4, first step (the
// whole model on the GPU; the projections' tensor-core GEMM tiles are the
// next one).
//   - The anchor (matmul or reduction) is its own kernel: one thread per
//     output element, its reduction a serial loop in the thread; threads
//     run along the innermost dimension (a matmul's columns), so B in
//     [depth, W] layout is read coalesced and a transposed B (nn.Linear's
//     [out, in]) row by row through L1.
//   - A matmul's A operand, when computed (RMSNorm feeding a projection), is
//     a kernel of its own, so that it is not recomputed per output column.
//   - The output (with the elementwise epilogue) is one flat kernel over all
//     its elements.
//   - A gather's index check (an out-of-range token is an error) runs on the
//     host before the kernels: a GPU kernel cannot raise it.
// Every kernel is 256 threads per block over the fused dimensions.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"

namespace deltaflow::compiler {

namespace {

constexpr int kThreads = 256;

/// `s`'s pure vars `vars` (innermost first) fused into one and split into
/// blocks of kThreads GPU threads.
void gpuFlat(Halide::Stage s, const std::vector<Halide::Var> &vars) {
  Halide::VarOrRVar x = vars.at(0);
  for (size_t i = 1; i < vars.size(); ++i) {
    Halide::Var fused(vars[0].name() + "_f" + std::to_string(i));
    s.fuse(x, vars[i], fused);
    x = fused;
  }
  Halide::Var block("gpu_block"), thread("gpu_thread");
  s.gpu_tile(x, block, thread, kThreads, Halide::TailStrategy::GuardWithIf);
}

std::vector<Halide::Var> pureVars(const Halide::Func &f) { return f.args(); }

} // namespace

void scheduleGraphGpu(GraphPipeline &p, const Halide::Target &) {
  // Checks that raise a run's error (a gather's indices) run on the host.
  for (Halide::Func &f : p.hostChecks)
    f.compute_root();
  if (p.anchor != GraphPipeline::Anchor::None) {
    Halide::Func a = p.anchorFunc;
    a.compute_root();
    gpuFlat(a, p.anchorVars);
    gpuFlat(a.update(), p.anchorVars);
    if (p.anchor == GraphPipeline::Anchor::Matmul && !p.matmulAIsInput) {
      p.matmulA.compute_root();
      gpuFlat(p.matmulA, pureVars(p.matmulA));
    }
  }
  gpuFlat(p.out, p.vars);
}

} // namespace deltaflow::compiler
