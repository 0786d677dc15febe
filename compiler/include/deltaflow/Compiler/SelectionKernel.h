//===- SelectionKernel.h - Halide side of a sparsity policy -----*- C++ -*-===//
//
// A policy's `buildKernel` (SparsityPolicy.h) receives a SelectionBuild and
// defines `indices(t, c, hs, b)`: slot t of chunk c for head set hs of batch
// b, an ascending key index or -1. It also schedules what it defined, for
// `target`. The helpers below are the shared pieces: chunk geometry, the
// chunk-mean query, per-head scores with one pass over K, and an exact
// top-k / top-mass threshold built from two 16-bit histogram levels.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_SELECTIONKERNEL_H
#define DELTAFLOW_COMPILER_SELECTIONKERNEL_H

#include "deltaflow/Compiler/Float16.h"
#include "deltaflow/Compiler/HalideCommon.h"
#include "deltaflow/Compiler/KernelSpec.h"

#include "Halide.h"

namespace deltaflow::compiler {

struct SelectionBuild {
  SelectSpec spec;
  Halide::Target target;
  /// Widen f16 K with the integer form (the target family's choice).
  bool bitWidenF16 = true;
  Halide::ImageParam q{Halide::Float(32), 4, "q"}; ///< (d, i, h, b)
  /// (d, j, hk, b); its element type is spec.kDtype (f32 or f16, set by
  /// buildSelection): read it through key(), which casts to float.
  Halide::ImageParam k{Halide::Float(32), 4, "k"};
  Halide::Var t{"t"}, c{"c"}, hs{"hs"}, b{"b"};
  /// (t, c, hs, b) -> int32: chunk c's selected keys, compacted: the
  /// selected keys in ascending order in the first slots, then -1. The
  /// sparse attention kernel skips key blocks that start at a -1 slot.
  Halide::Func indices{"indices"};

  /// K as float32, whatever its stored type.
  Halide::Expr key(const Halide::Expr &d, const Halide::Expr &j,
                   const Halide::Expr &hk, const Halide::Expr &b) const {
    return widenToF32(k(d, j, hk, b), bitWidenF16);
  }
  Halide::Expr nq() const { return q.dim(1).extent(); }
  Halide::Expr nk() const { return k.dim(1).extent(); }
  int groupSize() const { return int(spec.hq / spec.hkv); }
  // Inline, so that plug-ins use them without linking deltaflow's compiler.
  /// Position of the first query of chunk `chunk`.
  Halide::Expr chunkStart(const Halide::Expr &chunk) const {
    return geometry::chunkStart(
        geometry::firstQueryPosition(nq(), nk(), spec.offset), chunk, spec.chunk);
  }
  /// Candidates of a chunk are keys [sinks, sinks + candidateCount(c)).
  Halide::Expr candidateCount(const Halide::Expr &chunk) const {
    return geometry::candidateCount(chunkStart(chunk), nk(), spec.sinks,
                                    spec.window);
  }
  /// Largest candidate count of any chunk (an RDom extent).
  Halide::Expr maxCandidates() const {
    return Halide::max(nk() - int(spec.sinks), 1);
  }
  /// A policy parameter; `fallback` if absent.
  double param(const std::string &name, double fallback = 0) const {
    auto it = spec.knobs.find(name);
    return it == spec.knobs.end() ? fallback : it->second;
  }
};

/// qbar(d, h, c, b): mean of the chunk's query rows for head h.
Halide::Func chunkMeanQuery(SelectionBuild &sb);

/// Per-head scores s(j, g, hk, c, b) = qbar_{hk*G+g} . k_hk(sinks + j) for
/// candidate j, computed in blocks of keys with one pass over K; `schedule`
/// makes it a parallel root stage.
struct CandidateScores {
  Halide::Func qbar, dot, scores;
  Halide::Var j{"j"}, g{"g"}, hk{"hk"}, c{"c"}, b{"b"}, jb{"jb"}, ji{"ji"};
  Halide::RDom rd;
  int block = 512;
};
CandidateScores candidateScores(SelectionBuild &sb);
void scheduleCandidateScores(CandidateScores &cs, const SelectionBuild &sb);

/// The keys of candidates j in [0, n) with the largest cumulative weight:
/// `thr` is the largest uint32 key such that the weight of the candidates
/// with key >= thr reaches `target`. Level-1 and level-2 histograms over the
/// key's high and low 16 bits make it exact in two passes.
struct Threshold {
  Halide::Func hist1, cum1, bin1, hist2, cum2, bin2;
  /// result(outer) = {thr (uint32), weight strictly above thr, count
  /// strictly above thr, found (bool as uint8)}
  Halide::Func result;
};
Threshold findThreshold(const Halide::Func &key, const Halide::Func &weight,
                        const Halide::Expr &n, const Halide::Expr &target,
                        const Halide::Expr &maxN,
                        const std::vector<Halide::Var> &outer,
                        const std::string &name);

/// idx(t, outer) for t < slots: the `k` largest keys among j in [0, n) in
/// ascending j, ties broken towards lower j; -1 in unused slots.
struct TopK {
  Threshold threshold;
  Halide::Func scan, idx;
};
TopK topK(const Halide::Func &key, const Halide::Expr &n,
          const Halide::Expr &k, int slots, const Halide::Expr &maxN,
          const std::vector<Halide::Var> &outer, const std::string &name);
/// Computes every stage of `tk` per value of the outer loop `at`.
void scheduleTopK(TopK &tk, const Halide::LoopLevel &at);
void scheduleThreshold(Threshold &th, const Halide::LoopLevel &at);

/// indices(t, c, hs, b) = the top-k's candidate in slot t as a key (sinks +
/// candidate), -1 in unused slots.
void indicesFromTopK(SelectionBuild &sb, const TopK &tk);
/// Schedules `sb.indices` as one parallel task per (chunk, head set, batch)
/// and returns that task's loop level (for the per-chunk stages).
Halide::LoopLevel indicesPerTask(SelectionBuild &sb);

/// Order-preserving uint32 key of a float (larger float -> larger key).
Halide::Expr orderedKey(const Halide::Expr &f);

/// softmax over the candidates of a chunk, per query head; with `withKept`
/// the softmax also runs over the keys every query keeps (the sinks and the
/// chunk's local window), and `keptShare` is their part of the mass.
struct HeadSoftmax {
  Halide::RDom candidates; ///< what max and sum reduce over (first update)
  Halide::Func max, sum;
  Halide::Func prob; ///< (j, g, hk, c, b)
  Halide::Func keptScore, keptSum, keptShare; ///< withKept only
};
HeadSoftmax headSoftmax(SelectionBuild &sb, CandidateScores &cs,
                        bool withKept = false);
void scheduleHeadSoftmax(HeadSoftmax &hs, CandidateScores &cs,
                         const SelectionBuild &sb);

/// Root stage over candidates j: parallel over blocks of 1024, vectorised
/// over j; its update reduces over `rvars` inside each block. (GPU targets:
/// one thread per candidate.)
void scheduleOverCandidates(Halide::Func f, const Halide::Var &j,
                            const std::vector<Halide::RVar> &rvars,
                            const Halide::Target &t);

/// Builds the selection pipeline of `spec` for `target` through its policy.
SelectionBuild buildSelection(const SelectSpec &spec,
                              const Halide::Target &target);

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_SELECTIONKERNEL_H
