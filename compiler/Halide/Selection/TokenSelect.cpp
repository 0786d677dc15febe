//===- TokenSelect.cpp - TokenSelect's selection kernel -------------------===//
//
// s_h(j) = qbar_h . k_{h/G}(j) over candidates j (one pass over K);
// S(j) = sum_h softmax_j(s_h(j) / sqrt(D)); indices = top-`budget` of S per chunk,
// shared by all heads, ascending.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "Selection.h"

#include <cmath>

namespace deltaflow::compiler {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

HeadSoftmax headSoftmax(SelectionBuild &sb, CandidateScores &cs,
                        bool withKept) {
  HeadSoftmax hs;
  // The softmax is over attention logits: the scores times 1/sqrt(D), the
  // temperature the attention itself applies. (Unscaled, at D = 128 it is
  // an argmax, and the vote ignores everything but the strongest keys.)
  const float scale = float(1.0 / std::sqrt(double(sb.spec.d)));
  RDom r(0, sb.maxCandidates(), "rsm");
  r.where(r < sb.candidateCount(cs.c));
  hs.candidates = r;
  hs.max = Func("head_max");
  hs.max(cs.g, cs.hk, cs.c, cs.b) = -3.0e38f;
  hs.max(cs.g, cs.hk, cs.c, cs.b) =
      Halide::max(hs.max(cs.g, cs.hk, cs.c, cs.b), cs.scores(r, cs.g, cs.hk, cs.c, cs.b));
  RDom rk; // over the kept keys
  if (withKept) {
    // Kept keys: slot t < sinks is key t; then the window [s0 - window, s0).
    const int sinks = int(sb.spec.sinks), win = int(sb.spec.window);
    const int G = sb.groupSize();
    Var t("t");
    Expr s0 = sb.chunkStart(cs.c);
    auto keyOf = [&](const Expr &slot) {
      return Halide::select(slot < sinks, slot, s0 - win + (slot - sinks));
    };
    auto validKey = [&](const Expr &slot) {
      Expr key = keyOf(slot);
      return key >= 0 && key < Halide::min(s0, sb.nk()) &&
             (slot < sinks || key >= sinks);
    };
    RDom rd(0, int(sb.spec.d), "rd_kept");
    hs.keptScore = Func("kept_score");
    hs.keptScore(t, cs.g, cs.hk, cs.c, cs.b) = 0.0f;
    hs.keptScore(t, cs.g, cs.hk, cs.c, cs.b) +=
        cs.qbar(rd, cs.hk * G + cs.g, cs.c, cs.b) *
        sb.key(rd, Halide::clamp(keyOf(t), 0, sb.nk() - 1), cs.hk, cs.b);
    rk = RDom(0, std::max(sinks + win, 1), "rkept");
    rk.where(sinks + win > 0 && validKey(rk));
    hs.max(cs.g, cs.hk, cs.c, cs.b) =
        Halide::max(hs.max(cs.g, cs.hk, cs.c, cs.b),
                    hs.keptScore(rk, cs.g, cs.hk, cs.c, cs.b));
  }
  hs.sum = Func("head_sum");
  hs.sum(cs.g, cs.hk, cs.c, cs.b) = 0.0f;
  hs.sum(cs.g, cs.hk, cs.c, cs.b) +=
      Halide::exp((cs.scores(r, cs.g, cs.hk, cs.c, cs.b) -
                   hs.max(cs.g, cs.hk, cs.c, cs.b)) * scale);
  if (withKept) {
    hs.keptSum = Func("kept_sum");
    hs.keptSum(cs.g, cs.hk, cs.c, cs.b) = 0.0f;
    hs.keptSum(cs.g, cs.hk, cs.c, cs.b) +=
        Halide::exp((hs.keptScore(rk, cs.g, cs.hk, cs.c, cs.b) -
                     hs.max(cs.g, cs.hk, cs.c, cs.b)) * scale);
    hs.sum(cs.g, cs.hk, cs.c, cs.b) += hs.keptSum(cs.g, cs.hk, cs.c, cs.b);
    hs.keptShare = Func("kept_share");
    hs.keptShare(cs.g, cs.hk, cs.c, cs.b) =
        hs.keptSum(cs.g, cs.hk, cs.c, cs.b) / hs.sum(cs.g, cs.hk, cs.c, cs.b);
  }
  hs.prob = Func("head_prob");
  hs.prob(cs.j, cs.g, cs.hk, cs.c, cs.b) =
      Halide::exp((cs.scores(cs.j, cs.g, cs.hk, cs.c, cs.b) -
                   hs.max(cs.g, cs.hk, cs.c, cs.b)) * scale) /
      hs.sum(cs.g, cs.hk, cs.c, cs.b);
  return hs;
}

void scheduleHeadSoftmax(HeadSoftmax &hs, CandidateScores &cs,
                         const SelectionBuild &sb) {
  Var gh("gh");
  if (sb.target.has_gpu_feature()) {
    // The scores are on the device: each head's max and sum over the
    // candidates there too, by 1024 threads per (head, chunk) that stride
    // over the candidates (coalesced), then one thread per head.
    for (Func *f : {&hs.max, &hs.sum}) {
      Halide::RVar ro("ro"), ri("ri");
      Var w("w");
      Halide::RVar r(hs.candidates.x);
      Func partial = f->update(0)
                         .split(r, ro, ri, 1024, Halide::TailStrategy::GuardWithIf)
                         .rfactor(ri, w);
      partial.compute_root()
          .reorder(w, cs.g, cs.hk, cs.c)
          .gpu_blocks(cs.g, cs.hk, cs.c)
          .gpu_threads(w);
      partial.update()
          .reorder(ro, w, cs.g, cs.hk, cs.c)
          .gpu_blocks(cs.g, cs.hk, cs.c)
          .gpu_threads(w);
      f->compute_root().gpu_blocks(cs.g, cs.hk, cs.c);
      for (int u = 0; u < f->num_update_definitions(); ++u)
        f->update(u).gpu_blocks(cs.g, cs.hk, cs.c);
    }
    if (hs.keptScore.defined()) { // small: one thread per kept key
      hs.keptScore.compute_root().gpu_blocks(cs.hk, cs.c).gpu_threads(hs.keptScore.args()[0]);
      hs.keptScore.update().gpu_blocks(cs.hk, cs.c).gpu_threads(hs.keptScore.args()[0]);
      hs.keptSum.compute_root().gpu_blocks(cs.g, cs.hk, cs.c);
      hs.keptSum.update().gpu_blocks(cs.g, cs.hk, cs.c);
      hs.keptShare.compute_root();
    }
    return;
  }
  for (Func *f : {&hs.max, &hs.sum}) {
    f->compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
    for (int u = 0; u < f->num_update_definitions(); ++u)
      f->update(u).fuse(cs.g, cs.hk, gh).parallel(gh);
  }
  if (hs.keptScore.defined()) {
    hs.keptScore.compute_root().parallel(cs.hk);
    hs.keptScore.update().parallel(cs.hk);
    hs.keptSum.compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
    hs.keptSum.update().fuse(cs.g, cs.hk, gh).parallel(gh);
    hs.keptShare.compute_root();
  }
}

void scheduleOverCandidates(Func f, const Var &j,
                            const std::vector<Halide::RVar> &rvars,
                            const Halide::Target &t) {
  Var jo("jo"), ji("ji");
  if (t.has_gpu_feature()) { // one thread per candidate, its sum in registers
    f.compute_root()
        .split(j, jo, ji, 256, Halide::TailStrategy::GuardWithIf)
        .gpu_blocks(jo)
        .gpu_threads(ji);
    f.update()
        .split(j, jo, ji, 256, Halide::TailStrategy::GuardWithIf)
        .gpu_blocks(jo)
        .gpu_threads(ji);
    return;
  }
  const int vj = t.natural_vector_size<float>();
  f.compute_root()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .parallel(jo)
      .vectorize(ji, vj);
  std::vector<Halide::VarOrRVar> order = {ji};
  order.insert(order.end(), rvars.begin(), rvars.end());
  order.push_back(jo);
  f.update()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .reorder(order)
      .parallel(jo)
      .vectorize(ji, vj);
}

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

} // namespace deltaflow::compiler
