//===- TokenSelect.cpp - TokenSelect: soft vote + shared top-k ------------===//
//
// TokenSelect (Wu et al., 2024): per head s_h(j) = qbar_h . k_{h/G}(j) over
// the candidates j (one pass over K); S(j) = sum_h softmax_j(s_h(j) /
// sqrt(D)); one shared top-`budget` set per chunk, ascending.
// Attribute: #attn.token_select<budget, sinks, window, chunk>.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

namespace {
void buildTokenSelectKernel(SelectionBuild &sb);
} // namespace

Policy tokenSelectPolicy() {
  Policy p;
  p.name = "token-select";
  p.summary = "TokenSelect: per-head scores, soft vote, shared top-k per chunk";
  p.params = withCommonParams({{"budget", 1, kMaxBudget}});
  p.slots = [](const Params &ps) { return paramInt(ps, "budget"); };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::TokenSelectAttr::get(
        ctx, paramInt(ps, "budget"), paramInt(ps, "sinks"),
        paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.buildKernel = buildTokenSelectKernel;
  return p;
}

namespace {

/// Defined after the policy it serves.
void buildTokenSelectKernel(SelectionBuild &sb) {
  CandidateScores cs = candidateScores(sb);
  HeadSoftmax sm = headSoftmax(sb, cs);
  const int G = sb.groupSize(), hkv = int(sb.spec.hkv);
  Var j("j"), c = sb.c, hs = sb.hs, b = sb.b;

  // Soft vote summed over every query head.
  RDom rh(0, G, 0, hkv, "rh");
  Func vote("ts_vote");
  vote(j, c, b) = 0.0f;
  vote(j, c, b) += sm.prob(j, rh.x, rh.y, c, b);
  Func key("ts_key");
  key(j, c, hs, b) = orderedKey(vote(j, c, b));

  TopK tk = topK(key, sb.candidateCount(c), Expr(int(sb.param("budget"))),
                 int(sb.spec.slots), sb.maxCandidates(), {c, hs, b}, "ts");
  indicesFromTopK(sb, tk);

  // Schedule: scores, statistics and the vote are parallel root stages; the
  // top-k runs per (chunk, batch).
  scheduleCandidateScores(cs, sb);
  scheduleHeadSoftmax(sm, cs, sb);
  scheduleOverCandidates(vote, j, {rh.x, rh.y}, sb.target);
  scheduleTopK(tk, indicesPerTask(sb));
}

} // namespace

} // namespace deltaflow::sparsity
