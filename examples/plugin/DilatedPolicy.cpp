//===- DilatedPolicy.cpp - an out-of-tree sparsity policy as a plug-in ----===//
//
// `dilated`: besides the sinks and the local window, each query chunk sees
// every `dilation`-th candidate counting back from the window, `budget` of
// them. The whole policy is this file: its parameters with their bounds for
// the pass, and its selection kernel (a Halide algorithm and schedule) for
// the compiler; an in-tree policy is the same file under
// passes/lib/Policies/ plus a line in its Builtin.cpp (Strided.cpp there).
// Load it into any
// deltaflow tool:
//
//   deltaflow-opt    --load-pass-plugin=libDeltaflowDilatedPolicy.so \
//                    --attn-sparsify="policy=dilated budget=1024 param=dilation:4"
//   deltaflow-compile --load-pass-plugin=libDeltaflowDilatedPolicy.so \
//                    --sparsity="policy=dilated budget=1024 param=dilation:4" ...
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

namespace sp = deltaflow::sparsity;
using deltaflow::compiler::SelectionBuild;

namespace {

/// indices(t, c): the candidates `dilation` apart counting back from the
/// last one before chunk c's window, `used` of them (at most `budget`), in
/// ascending order, then -1 (selections are compacted: SelectionKernel.h).
void buildKernel(SelectionBuild &sb) {
  const int budget = int(sb.param("budget"));
  const int dilation = int(sb.param("dilation", 1));
  Halide::Expr n = sb.candidateCount(sb.c);
  Halide::Expr used =
      Halide::clamp(Halide::select(n > 0, (n - 1) / dilation + 1, 0), 0, budget);
  Halide::Expr cand = n - 1 - (used - 1 - sb.t) * dilation;
  sb.indices(sb.t, sb.c, sb.hs, sb.b) =
      Halide::select(sb.t < used, int(sb.spec.sinks) + cand, -1);
  // Schedule: one vectorised row of slots per chunk.
  sb.indices.compute_root()
      .vectorize(sb.t, sb.target.natural_vector_size<int32_t>(),
                 Halide::TailStrategy::GuardWithIf)
      .parallel(sb.c);
}

void registerDilated() {
  sp::Policy p;
  p.name = "dilated";
  p.summary = "dilated: every dilation-th key before the window (plug-in)";
  // Bounds are checked by the registry (checkParams), in the pass and in
  // the #attn.policy attribute's verifier.
  p.params = sp::commonParams();
  p.params.push_back({"budget", 1, double(int64_t(1) << 24)});
  p.params.push_back({"dilation", 1, double(int64_t(1) << 20)});
  p.slots = [](const sp::Params &ps) { return sp::paramInt(ps, "budget"); };
  p.buildKernel = buildKernel;
  // A duplicate name is recorded by the registry and reported by the tool.
  sp::registerPolicy(std::move(p));
}

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK ::mlir::PassPluginLibraryInfo
mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "DeltaflowDilatedPolicy", LLVM_VERSION_STRING,
          registerDilated};
}
