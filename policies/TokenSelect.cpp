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

using namespace compiler;
using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

namespace {

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
  sb.indices(sb.t, c, hs, b) =
      Halide::select(tk.idx(sb.t, c, hs, b) >= 0,
                     tk.idx(sb.t, c, hs, b) + int(sb.spec.sinks), -1);

  // Schedule: scores, statistics and the vote are parallel root stages; the
  // top-k runs per (chunk, batch).
  scheduleCandidateScores(cs, sb);
  scheduleHeadSoftmax(sm, cs, sb);
  scheduleOverCandidates(vote, j, {rh.x, rh.y}, sb.target);
  Var task("task");
  sb.indices.compute_root().fuse(c, hs, task).fuse(task, b, task).parallel(task);
  scheduleTopK(tk, Halide::LoopLevel(sb.indices, task));
}

} // namespace

Policy tokenSelectPolicy() {
  Policy p;
  p.name = "token-select";
  p.summary = "TokenSelect: per-head scores, soft vote, shared top-k per chunk";
  p.params = commonParams();
  p.params.push_back({"budget", 1, double(int64_t(1) << 24)});
  p.slots = [](const Params &ps) { return paramInt(ps, "budget"); };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::TokenSelectAttr::get(
        ctx, paramInt(ps, "budget"), paramInt(ps, "sinks"),
        paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.buildKernel = buildTokenSelectKernel;
  return p;
}

} // namespace deltaflow::sparsity
