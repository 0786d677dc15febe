//===- Adaptive.cpp - adaptive top-p per KV-head group --------------------===//
//
// Adaptive top-p (Twilight-style): per (KV head, chunk), mass(j) = mean over
// the group's heads of the softmax of s_h / sqrt(D) over the candidates and
// the keys kept anyway (sinks, window); n_p = the size of the smallest set
// of candidates that brings the mass of everything kept to p (exact: a mass
// threshold, then the ties it needs); the selection is the
// top-clamp(n_p, min-budget, max-budget) candidates by mass.
// Attribute: #attn.adaptive<p, min_budget, max_budget, sinks, window, chunk>.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

namespace {

void buildAdaptiveKernel(SelectionBuild &sb) {
  CandidateScores cs = candidateScores(sb);
  HeadSoftmax sm = headSoftmax(sb, cs, /*withKept=*/true);
  const int G = sb.groupSize();
  Var j("j"), c = sb.c, hs = sb.hs, b = sb.b;

  RDom rg(0, G, "rg");
  Func mass("ad_mass"); // (j, c, hs, b) with hs = KV head
  mass(j, c, hs, b) = 0.0f;
  mass(j, c, hs, b) += sm.prob(j, rg, hs, c, b) * (1.0f / float(G));
  Func key("ad_key");
  key(j, c, hs, b) = orderedKey(mass(j, c, hs, b));

  Expr n = sb.candidateCount(c);
  const float p = float(sb.param("p"));
  // The sinks and the window are kept anyway: the selection only has to
  // bring the estimated mass of everything kept up to p.
  Func target("ad_target");
  target(c, hs, b) = Expr(p);
  target(c, hs, b) -= sm.keptShare(rg, hs, c, b) * (1.0f / float(G));
  Threshold th = findThreshold(key, mass, n, target(c, hs, b),
                               sb.maxCandidates(), {c, hs, b}, "ad_mass_thr");
  Expr thrKey = th.result(c, hs, b)[0];
  Expr thrMass = Halide::reinterpret(Halide::Float(32),
                                     thrKey & Halide::cast<uint32_t>(0x7FFFFFFF));
  Expr rest = target(c, hs, b) - th.result(c, hs, b)[1];
  Expr needTies = Halide::cast<int>(
      Halide::ceil(rest / Halide::max(thrMass, 1e-30f)));
  Expr nP = Halide::select(target(c, hs, b) <= 0.0f, 0,
                           th.result(c, hs, b)[3] != 0,
                           th.result(c, hs, b)[2] + Halide::max(needTies, 1), n);
  Func budget("ad_budget");
  budget(c, hs, b) = Halide::clamp(Halide::min(nP, n),
                                   int(sb.param("min-budget")),
                                   int(sb.param("max-budget")));

  TopK tk = topK(key, n, budget(c, hs, b), int(sb.spec.slots),
                 sb.maxCandidates(), {c, hs, b}, "ad");
  indicesFromTopK(sb, tk);

  scheduleCandidateScores(cs, sb);
  scheduleHeadSoftmax(sm, cs, sb);
  scheduleOverCandidates(mass, j, {rg}, sb.target);
  Halide::LoopLevel perTask = indicesPerTask(sb);
  target.compute_at(perTask);
  scheduleThreshold(th, perTask);
  budget.compute_at(perTask);
  scheduleTopK(tk, perTask);
}

} // namespace

Policy adaptivePolicy() {
  Policy p;
  p.name = "adaptive";
  p.summary = "adaptive top-p: smallest set reaching mass p per KV-head group";
  p.params = withCommonParams({{"p", 0, 1, /*integer=*/false, /*loOpen=*/true},
                               {"min-budget", 1, kMaxBudget},
                               {"max-budget", 1, kMaxBudget}});
  p.check = [](const Params &ps) -> std::string {
    if (paramInt(ps, "max-budget") < paramInt(ps, "min-budget"))
      return "max-budget (" + std::to_string(paramInt(ps, "max-budget")) +
             ") must be >= min-budget (" +
             std::to_string(paramInt(ps, "min-budget")) + ")";
    return "";
  };
  p.perKvHead = true;
  p.slots = [](const Params &ps) { return paramInt(ps, "max-budget"); };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::AdaptiveAttr::get(
        ctx, llvm::APFloat(ps.at("p")), paramInt(ps, "min-budget"),
        paramInt(ps, "max-budget"), paramInt(ps, "sinks"),
        paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.buildKernel = buildAdaptiveKernel;
  return p;
}

} // namespace deltaflow::sparsity
