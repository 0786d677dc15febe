//===- ContextParallel.h - attention over key shards, merged by LSE -*- C++ -*-===//
//
// Context parallelism (DESIGN "Scale-out"): the keys of one attention are
// split by sequence across ranks; each rank attends to its shard and returns
// its output normalised over its own keys with its log-sum-exp, and the
// partials merge exactly:
//   L = m + log Σ_i exp(L_i − m),  m = max_i L_i,   O = Σ_i exp(L_i − L) O_i
// (Milakov & Gimelshein, "Online normalizer calculation for softmax", 2018;
// the same merge as Flash-Decoding's and ring attention's). Plain C++: the
// communicators (Communicator.h) move the partials.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_CONTEXTPARALLEL_H
#define DELTAFLOW_RUNTIME_CONTEXTPARALLEL_H

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace deltaflow::rt {

/// The keys [begin, end) of shard `rank` of `ranks` over `nk` keys:
/// contiguous, in rank order, sizes differing by at most one (the first
/// nk mod ranks shards hold one more). Empty when nk < ranks for the last
/// ones.
std::pair<int64_t, int64_t> keyShard(int64_t nk, int rank, int ranks);

/// One rank's partial attention: `out` [rows, dv] normalised over its keys
/// and `lse` [rows] (natural log), row-major float32. A shard with no keys
/// is the merge's identity: out = nullptr (read as 0) and lse = nullptr
/// (read as −inf).
struct AttentionPartial {
  const float *out = nullptr;
  const float *lse = nullptr;
};

/// Merges the partials of disjoint key shards into `out` [rows, dv] and
/// `lse` [rows] (either may be nullptr). Per row, with m = max_i L_i:
///  - partials with L_i = −inf weigh exactly 0 (a shard that sees no key
///    of the row, or an empty shard), whatever their output holds;
///  - m = −inf (no key of the row anywhere): out NaN, lse −inf, as the
///    unsharded kernel gives for a row whose every score is −inf;
///  - a NaN or +inf L_i (a NaN or +inf score in that shard) makes the row
///    and its lse NaN, as unsharded;
///  - the other partials weigh at least the smallest normal double, so an
///    inf or NaN in a shard's output (from its V) reaches the row however
///    far below m its L_i lies, as unsharded (docs/hardening.md).
/// Accumulates in double; the result differs from the unsharded kernel by
/// float32 rounding.
void mergeAttentionPartials(const std::vector<AttentionPartial> &parts,
                            int64_t rows, int64_t dv, float *out, float *lse);

// --- TokenSelect over key shards (a global top-k) ----------------------------
//
// TokenSelect's selection for one decode row (DESIGN "TokenSelect" and
// "Scale-out": a global top-k threshold from gathered candidate scores),
// made by ranks that each hold a contiguous shard of the keys. Per head h
// the vote needs softmax_j(s_h(j)) over *every* candidate j, so it takes two
// exchanges:
//  1. each rank's softmax statistics over its candidates, (max, Σ exp(s −
//     max)) per (batch, head), combined into the global ones as the online
//     softmax does (Milakov & Gimelshein 2018);
//  2. each rank's `budget` best votes S(j) = Σ_h exp(s_h(j) − M_h) / L_h
//     with their key positions; the global top-`budget` of their union is
//     the unsharded top-k, since a key in it is among its own shard's best
//     `budget`.
// Scores are s_h(j) = q_h · k_{h/G}(j) / sqrt(D) (the grouped-query map of
// DESIGN, the 1/sqrt(D) temperature of the compiled selection), accumulated
// in float32 lanes as the compiled selection does; the statistics and votes
// are float64 functions of each logit and the global statistics alone, so
// equal logits get equal votes on every rank, and ties take the lowest key
// first, as the compiled top-k does. The selection is thus the float64
// TokenSelect of these logits for any number of ranks; it matches the
// compiled (float32) kernel's except where votes are within float32
// rounding of each other.

/// Softmax statistics of one (batch, head) over some candidates: the
/// largest logit and Σ exp(logit − max). No candidate: (−inf, 0). A NaN
/// logit makes both NaN, here and in the combined statistics, so that head
/// gives every candidate a NaN vote on every rank (IEEE propagation; the
/// selection is then the lowest keys, whatever the rank count).
struct SoftmaxStats {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
};

/// A candidate key (global position) and its vote; key −1 pads.
struct VoteCandidate {
  double vote = -std::numeric_limits<double>::infinity();
  int64_t key = -1;
};

/// One rank's part of the selection: the logits of its candidates.
class TokenSelectShard {
public:
  /// `q`: the decode row, [B, Hq, D] float32 row-major. `k`: this rank's
  /// keys, [B, Hkv, n, D] float32, holding the context's keys
  /// [keyBegin, keyBegin + n). Candidates are the context's keys
  /// [candBegin, candEnd) (TokenSelect: [sinks, Nk − 1 − window) for
  /// decode); this rank scores those it holds. Hq must be a multiple of
  /// Hkv. Throws std::invalid_argument on inconsistent sizes.
  TokenSelectShard(const float *q, const float *k, int64_t batch, int64_t hq, int64_t hkv,
                   int64_t d, int64_t n, int64_t keyBegin, int64_t candBegin,
                   int64_t candEnd);
  /// Candidates this rank scores: keys [first(), first() + count()).
  int64_t first() const { return first_; }
  int64_t count() const { return count_; }
  /// Its softmax statistics, [B * Hq].
  std::vector<SoftmaxStats> stats() const;
  /// The global statistics from every rank's stats() (rank order; any
  /// order gives the same maxima, sums to float64 rounding).
  static std::vector<SoftmaxStats>
  combine(const std::vector<std::vector<SoftmaxStats>> &perRank);
  /// Its best `budget` votes under the global statistics, per batch,
  /// [B * budget] (best first; padded with key −1). A NaN vote ranks
  /// above every number.
  std::vector<VoteCandidate> bestVotes(const std::vector<SoftmaxStats> &global,
                                       int64_t budget) const;
  /// The selection: for each batch, the `budget` best of every rank's
  /// bestVotes (ties: lowest key first), ascending. `perRank[r]` holds
  /// [B * budget] candidates.
  static std::vector<std::vector<int64_t>>
  select(const std::vector<const VoteCandidate *> &perRank, int64_t batch, int64_t budget);

private:
  int64_t batch_, hq_, first_, count_;
  /// [B, Hq, count]: q_h · k(j) / sqrt(D) (float32 products summed in 16
  /// float lanes, then pairwise).
  std::vector<float> logits_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_CONTEXTPARALLEL_H
