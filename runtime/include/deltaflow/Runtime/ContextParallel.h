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
///    and its lse NaN, as unsharded.
/// Accumulates in double; the result differs from the unsharded kernel by
/// float32 rounding.
void mergeAttentionPartials(const std::vector<AttentionPartial> &parts,
                            int64_t rows, int64_t dv, float *out, float *lse);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_CONTEXTPARALLEL_H
