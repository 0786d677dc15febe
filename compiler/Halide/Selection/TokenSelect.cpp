//===- TokenSelect.cpp - TokenSelect's selection kernel -------------------===//
//
// s_h(j) = qbar_h . k_{h/G}(j) over candidates j (one pass over K);
// S(j) = sum_h softmax_j(s_h(j)); indices = top-`budget` of S per chunk,
// shared by all heads, ascending.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "Selection.h"

namespace deltaflow::compiler {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

HeadSoftmax headSoftmax(SelectionBuild &sb, CandidateScores &cs) {
  HeadSoftmax hs;
  RDom r(0, sb.maxCandidates(), "rsm");
  r.where(r < sb.candidateCount(cs.c));
  hs.max = Func("head_max");
  hs.max(cs.g, cs.hk, cs.c, cs.b) = -3.0e38f;
  hs.max(cs.g, cs.hk, cs.c, cs.b) =
      Halide::max(hs.max(cs.g, cs.hk, cs.c, cs.b), cs.scores(r, cs.g, cs.hk, cs.c, cs.b));
  hs.sum = Func("head_sum");
  hs.sum(cs.g, cs.hk, cs.c, cs.b) = 0.0f;
  hs.sum(cs.g, cs.hk, cs.c, cs.b) +=
      Halide::exp(cs.scores(r, cs.g, cs.hk, cs.c, cs.b) - hs.max(cs.g, cs.hk, cs.c, cs.b));
  hs.prob = Func("head_prob");
  hs.prob(cs.j, cs.g, cs.hk, cs.c, cs.b) =
      Halide::exp(cs.scores(cs.j, cs.g, cs.hk, cs.c, cs.b) - hs.max(cs.g, cs.hk, cs.c, cs.b)) /
      hs.sum(cs.g, cs.hk, cs.c, cs.b);
  return hs;
}

void scheduleHeadSoftmax(HeadSoftmax &hs, CandidateScores &cs,
                         const SelectionBuild &sb) {
  Var gh("gh");
  hs.max.compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
  hs.max.update().fuse(cs.g, cs.hk, gh).parallel(gh);
  hs.sum.compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
  hs.sum.update().fuse(cs.g, cs.hk, gh).parallel(gh);
}

void buildTokenSelectKernel(SelectionBuild &sb) {
  CandidateScores cs = candidateScores(sb);
  HeadSoftmax sm = headSoftmax(sb, cs);
  const int G = sb.groupSize(), hkv = int(sb.spec.hkv);
  Var j("j"), c = sb.c, hs = sb.hs, b = sb.b, jo("jo"), ji("ji");

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
  const int vj = sb.target.natural_vector_size<float>();
  vote.compute_root()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .parallel(jo)
      .vectorize(ji, vj);
  vote.update()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .reorder(ji, rh.x, rh.y, jo)
      .parallel(jo)
      .vectorize(ji, vj);
  Var task("task");
  sb.indices.compute_root().fuse(c, hs, task).fuse(task, b, task).parallel(task);
  scheduleTopK(tk, Halide::LoopLevel(sb.indices, task));
}

} // namespace deltaflow::compiler
