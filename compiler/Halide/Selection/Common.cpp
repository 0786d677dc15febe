//===- Common.cpp - pieces every selection kernel shares ------------------===//
//
// Chunk geometry, the chunk-mean query, candidate scores with one pass over
// K, and an exact threshold / top-k over up to 2^31 candidates from two
// levels of 65536-bin histograms (high, then low 16 bits of an
// order-preserving uint32 key), then a serial compaction scan. No sort, no
// Nq x Nk matrix.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Compiler/Targets.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include <cmath>
#include <functional>
#include <stdexcept>

namespace deltaflow::compiler {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Tuple;
using Halide::Var;

Func chunkMeanQuery(SelectionBuild &sb) {
  Var d("d"), h("h"), c("c"), b("b");
  const int chunk = int(sb.spec.chunk);
  RDom r(0, chunk, "rq");
  Expr first = c * chunk;
  Expr rows = Halide::clamp(sb.nq() - first, 1, chunk);
  Func sum("qbar_sum"), qbar("qbar");
  sum(d, h, c, b) = 0.0f;
  sum(d, h, c, b) += Halide::select(first + r < sb.nq(),
                                    sb.q(d, Halide::min(first + r, sb.nq() - 1), h, b),
                                    0.0f);
  qbar(d, h, c, b) = sum(d, h, c, b) / Halide::cast<float>(rows);
  return qbar;
}

CandidateScores candidateScores(SelectionBuild &sb) {
  CandidateScores cs;
  cs.qbar = chunkMeanQuery(sb);
  const int G = sb.groupSize();
  cs.rd = RDom(0, int(sb.spec.d), "rd_sel");
  RDom &rd = cs.rd;
  Expr key = Halide::clamp(int(sb.spec.sinks) + cs.j, 0, sb.nk() - 1);
  cs.dot = Func("cand_dot");
  cs.dot(cs.j, cs.g, cs.hk, cs.c, cs.b) = 0.0f;
  cs.dot(cs.j, cs.g, cs.hk, cs.c, cs.b) +=
      cs.qbar(rd, cs.hk * G + cs.g, cs.c, cs.b) * sb.key(rd, key, cs.hk, cs.b);
  cs.scores = Func("cand_scores");
  cs.scores(cs.j, cs.g, cs.hk, cs.c, cs.b) = cs.dot(cs.j, cs.g, cs.hk, cs.c, cs.b);
  return cs;
}


void scheduleCandidateScores(CandidateScores &cs, const SelectionBuild &sb) {
  familyOf(sb.target).selection.scores(cs, sb);
}

Expr orderedKey(const Expr &f) {
  Expr u = Halide::reinterpret(Halide::UInt(32), f);
  return Halide::select((u >> 31) == Halide::cast<uint32_t>(0),
                        u | Halide::Internal::make_const(Halide::UInt(32), uint64_t(0x80000000u)), ~u);
}

namespace {
std::vector<Expr> withOuter(const Expr &x, const std::vector<Var> &outer) {
  std::vector<Expr> args{x};
  args.insert(args.end(), outer.begin(), outer.end());
  return args;
}
std::vector<Expr> outerArgs(const std::vector<Var> &outer) {
  return std::vector<Expr>(outer.begin(), outer.end());
}
} // namespace

Threshold findThreshold(const Func &key, const Func &weight, const Expr &n,
                        const Expr &target, const Expr &maxN,
                        const std::vector<Var> &outer, const std::string &name) {
  Threshold th;
  Var x(name + "_x");
  auto at = [&](const Expr &e) { return withOuter(e, outer); };
  std::vector<Expr> O = outerArgs(outer);
  constexpr int kBins = 65536;

  // One level: a histogram of 16 key bits (of the candidates `inLevel`
  // admits), its cumulative sums from the top, and the highest bin whose
  // cumulative weight plus `above` reaches the target. Returns that bin
  // (>= 0) and the weight and count strictly above it.
  struct Level {
    Expr bin, weightAbove, countAbove;
  };
  auto level = [&](Func &hist, Func &cum, Func &best, const std::string &tag,
                   const std::function<Expr(const Expr &)> &binOf,
                   const std::function<Expr(const Expr &)> &inLevel,
                   const Expr &above) {
    hist = Func(name + "_hist" + tag);
    hist(at(x)) = Tuple(0.0f, 0);
    RDom r(0, maxN, name + "_r" + tag);
    r.where(r < n && inLevel(r));
    Expr bin = Halide::clamp(binOf(key(at(r))), 0, kBins - 1);
    hist(at(bin)) = Tuple(hist(at(bin))[0] + weight(at(r)), hist(at(bin))[1] + 1);
    cum = Func(name + "_cum" + tag);
    cum(at(x)) = hist(at(x));
    RDom sc(0, kBins - 1, name + "_s" + tag);
    Expr xs = (kBins - 2) - sc;
    cum(at(xs)) = Tuple(cum(at(xs))[0] + cum(at(xs + 1))[0],
                        cum(at(xs))[1] + cum(at(xs + 1))[1]);
    best = Func(name + "_bin" + tag);
    best(O) = -1;
    RDom rb(0, kBins, name + "_b" + tag);
    best(O) = Halide::select(above + cum(at(rb))[0] >= target,
                             Halide::max(best(O), rb), best(O));
    Expr B = Halide::max(best(O), 0);
    Expr next = Halide::min(B + 1, kBins - 1);
    return Level{B, Halide::select(B < kBins - 1, cum(at(next))[0], 0.0f),
                 Halide::select(B < kBins - 1, cum(at(next))[1], 0)};
  };
  // Level 1: the high 16 bits; level 2: the low 16 bits of the keys in the
  // level-1 bin.
  Level l1 = level(
      th.hist1, th.cum1, th.bin1, "1",
      [](const Expr &k) { return Halide::cast<int>(k >> 16); },
      [](const Expr &) { return Halide::cast<bool>(true); }, 0.0f);
  Level l2 = level(
      th.hist2, th.cum2, th.bin2, "2",
      [](const Expr &k) {
        return Halide::cast<int>(k & Halide::cast<uint32_t>(0xFFFF));
      },
      [&](const Expr &r) {
        return (key(at(r)) >> 16) == Halide::cast<uint32_t>(l1.bin);
      },
      l1.weightAbove);
  Expr B1 = l1.bin, B2 = l2.bin;
  Expr w1 = l1.weightAbove, w2 = l2.weightAbove;
  Expr c1 = l1.countAbove, c2 = l2.countAbove;

  th.result = Func(name + "_thr");
  Expr thr = (Halide::cast<uint32_t>(B1) << 16) | Halide::cast<uint32_t>(B2);
  th.result(O) = Tuple(thr, w1 + w2, c1 + c2,
                       Halide::cast<uint8_t>(th.bin1(O) >= 0));
  return th;
}

TopK topK(const Func &key, const Expr &n, const Expr &k, int slots,
          const Expr &maxN, const std::vector<Var> &outer,
          const std::string &name) {
  TopK tk;
  Var x(name + "_x");
  auto at = [&](const Expr &e) { return withOuter(e, outer); };
  std::vector<Expr> O = outerArgs(outer);
  Func one(name + "_one");
  one(at(x)) = 1.0f;
  Expr want = Halide::max(Halide::min(k, n), 0);
  tk.threshold = findThreshold(key, one, n, Halide::cast<float>(want), maxN,
                               outer, name);
  Expr thr = tk.threshold.result(O)[0];
  Expr ties = want - tk.threshold.result(O)[2]; // ties to take, lowest j first

  // scan(j) = {kept before j, ties seen before j}.
  tk.scan = Func(name + "_scan");
  tk.scan(at(x)) = Tuple(0, 0);
  RDom r(0, maxN, name + "_rs");
  r.where(r < n);
  Expr kr = key(at(r));
  Expr isTie = kr == thr;
  Expr keep = kr > thr || (isTie && tk.scan(at(r))[1] < ties);
  tk.scan(at(r + 1)) =
      Tuple(tk.scan(at(r))[0] + Halide::select(keep, 1, 0),
            tk.scan(at(r))[1] + Halide::select(isTie, 1, 0));

  tk.idx = Func(name + "_idx");
  tk.idx(at(x)) = -1;
  RDom w(0, maxN, name + "_rw");
  Expr kw = key(at(w));
  Expr keepW = kw > thr || (kw == thr && tk.scan(at(w))[1] < ties);
  w.where(w < n && keepW);
  tk.idx(at(Halide::clamp(tk.scan(at(w))[0], 0, slots - 1))) =
      Halide::cast<int>(w);
  return tk;
}

void scheduleThreshold(Threshold &th, const Halide::LoopLevel &at) {
  for (Func *f : {&th.hist1, &th.cum1, &th.bin1, &th.hist2, &th.cum2,
                  &th.bin2, &th.result})
    f->compute_at(at);
}

void scheduleTopK(TopK &tk, const Halide::LoopLevel &at) {
  scheduleThreshold(tk.threshold, at);
  tk.scan.compute_at(at);
  tk.idx.compute_at(at);
}

// --- Per-head softmax over the candidates (TokenSelect, adaptive) ----------

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
  familyOf(sb.target).selection.headSoftmax(hs, cs, sb);
}

void scheduleOverCandidates(Func f, const Var &j,
                            const std::vector<Halide::RVar> &rvars,
                            const Halide::Target &t) {
  familyOf(t).selection.overCandidates(f, j, rvars, t);
}

void indicesFromTopK(SelectionBuild &sb, const TopK &tk) {
  Expr slot = tk.idx(sb.t, sb.c, sb.hs, sb.b);
  sb.indices(sb.t, sb.c, sb.hs, sb.b) =
      Halide::select(slot >= 0, slot + int(sb.spec.sinks), -1);
}

Halide::LoopLevel indicesPerTask(SelectionBuild &sb) {
  Var task("task");
  sb.indices.compute_root()
      .fuse(sb.c, sb.hs, task)
      .fuse(task, sb.b, task)
      .parallel(task);
  return Halide::LoopLevel(sb.indices, task);
}

SelectionBuild buildSelection(const SelectSpec &spec,
                              const Halide::Target &target) {
  sparsity::Policy *policy = sparsity::findPolicy(spec.policy);
  if (!policy)
    throw std::runtime_error("selection policy '" + spec.policy +
                             "' is not registered");
  if (!policy->buildKernel)
    throw std::runtime_error("selection policy '" + spec.policy +
                             "' has no kernel (a plug-in must set buildKernel)");
  SelectionBuild sb;
  sb.spec = spec;
  sb.target = target;
  sb.bitWidenF16 = familyOf(target).bitWidenF16;
  if (spec.kDtype != DType::Float32)
    sb.k = Halide::ImageParam(halideType(spec.kDtype), 4, "k");
  policy->buildKernel(sb);
  if (!sb.indices.defined())
    throw std::runtime_error("selection policy '" + spec.policy +
                             "' did not define its indices");
  return sb;
}

} // namespace deltaflow::compiler
