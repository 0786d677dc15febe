//===- Strided.cpp - strided: every stride-th candidate ------------------===//
//
// `strided`: the summary keys of the "fixed" pattern of Child et al., 2019
// ("Generating Long Sequences with Sparse Transformers", section 4.2, with
// c = 1): besides the sinks and the local window, each query chunk sees the
// keys at positions stride - 1, 2 stride - 1, ... among its candidates, the
// `budget` most recent of them. The positions are absolute, so consecutive
// chunks share their selections; the kernel reads neither Q nor K. The
// whole policy is this file plus its line in Builtin.cpp; it has no
// attribute of its own and is written `#attn.policy<"strided", {...}>`.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

namespace {

/// indices(t, c): with `last` the largest key m * stride - 1 among chunk c's
/// candidates [sinks, sinks + n), the `used` most recent such keys in
/// ascending order, then -1 (selections are compacted, SelectionKernel.h).
void buildStridedKernel(compiler::SelectionBuild &sb) {
  const int budget = int(sb.param("budget"));
  const int stride = int(sb.param("stride"));
  const int sinks = int(sb.spec.sinks);
  Halide::Expr end = sinks + sb.candidateCount(sb.c); // one past the last
  Halide::Expr last = (end / stride) * stride - 1;
  Halide::Expr used = Halide::clamp(
      Halide::select(last >= sinks, (last - sinks) / stride + 1, 0), 0, budget);
  Halide::Expr key = last - (used - 1 - sb.t) * stride;
  sb.indices(sb.t, sb.c, sb.hs, sb.b) = Halide::select(sb.t < used, key, -1);
  // Schedule: one vectorised row of slots per chunk.
  sb.indices.compute_root()
      .vectorize(sb.t, sb.target.natural_vector_size<int32_t>(),
                 Halide::TailStrategy::GuardWithIf)
      .parallel(sb.c);
}

} // namespace

Policy stridedPolicy() {
  Policy p;
  p.name = "strided";
  p.summary = "strided: every stride-th key before the window, budget of them";
  p.params = withCommonParams({{"budget", 1, kMaxBudget},
                               {"stride", 1, double(int64_t(1) << 20)}});
  p.slots = [](const Params &ps) { return paramInt(ps, "budget"); };
  p.buildKernel = buildStridedKernel;
  return p;
}

} // namespace deltaflow::sparsity
