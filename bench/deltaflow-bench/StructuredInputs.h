//===- StructuredInputs.h - seeded attention inputs with real structure ---===//
//
// Uniform random q/k/v make every key equally (un)important, which no
// sparsity method can exploit and no real model produces. These inputs add,
// on top of N(0, 1) noise, the structures long-context attention shows
// (Hq=32, Hkv=8, D=128; queries are the last `nq` positions of `n`):
//
//  * unrelated keys score low and neighbouring queries are alike: the noise
//    of q has amplitude 0.5 (logits of unrelated keys ~ N(0, 0.5^2)) and is
//    an AR(1) process along positions with correlation 0.99;
//  * attention sinks: keys 0..3 carry a large component along a direction
//    every query shares (scaled score ~ +12: a spike on the first tokens);
//  * locally decaying attention: a positional code in 32 of the 128 dims,
//    r(p) = [cos w_m p, sin w_m p] for 16 frequencies from 2pi/16 to
//    2pi/512, added to q and k, so q.k peaks at distance 0 and decays within
//    a few hundred tokens;
//  * slash lines: one extra positional frequency with period 1024, a weak
//    peak at every multiple of 1024 tokens back;
//  * vertical lines: 64 random keys share a direction every query leans to;
//  * needles: `needles` keys at random depths in [sinks + 1000, n - nq -
//    window - 1000), each aligned with one direction that a block of 128
//    query rows (aligned to 128) of one KV-head group carries (scaled score
//    ~ +16 for those rows: the needle dominates them) and holding a distinct
//    value vector.
//
// Everything derives from `seed`. Needle positions are returned so that a
// benchmark can check whether a selection found them.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_BENCH_STRUCTUREDINPUTS_H
#define DELTAFLOW_BENCH_STRUCTUREDINPUTS_H

#include "deltaflow/Runtime/Tensor.h"

#include <cstdint>
#include <vector>

namespace deltaflow::bench {

struct Needle {
  int64_t kvHead = 0; ///< KV head whose key holds it
  int64_t key = 0;    ///< key position
  int64_t firstRow = 0, rows = 0; ///< query rows (of the nq) that seek it
};

struct StructuredInputs {
  rt::Tensor q, k, v; ///< [1,32,nq,128], [1,8,n,128], [1,8,n,128]
  std::vector<Needle> needles;
};

/// `avoidTail`: needles stay at least this many keys before the queries
/// (the local window a selection does not need to find them in).
StructuredInputs makeStructuredInputs(int64_t n, int64_t nq, uint64_t seed,
                                      int needles = 16, int64_t avoidTail = 512);

} // namespace deltaflow::bench

#endif
