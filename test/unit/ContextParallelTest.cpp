//===- ContextParallelTest.cpp - key shards and the LSE merge -------------===//
//
// The merge of partial attentions (runtime/include/deltaflow/Runtime/
// ContextParallel.h) against float64 attention over all keys, on fresh
// random scores and values, with shards of uneven and zero size, and at the
// special values (rows no shard sees, NaN and +inf scores); TokenSelect's
// selection made across shards against the unsharded float64 one.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Runtime/ContextParallel.h"

#include "SparseReference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include <cmath>
#include <limits>
#include <random>

using namespace deltaflow::rt;

TEST(ContextParallel, KeyShardsCoverTheKeysInOrder) {
  for (int ranks : {1, 2, 3, 7})
    for (int64_t nk : {0, 1, 2, 5, 1001, 131072}) {
      int64_t next = 0, smallest = nk, largest = 0;
      for (int r = 0; r < ranks; ++r) {
        auto [b, e] = keyShard(nk, r, ranks);
        EXPECT_EQ(b, next) << nk << " keys, rank " << r << " of " << ranks;
        EXPECT_LE(b, e);
        smallest = std::min(smallest, e - b);
        largest = std::max(largest, e - b);
        next = e;
      }
      EXPECT_EQ(next, nk);
      EXPECT_LE(largest - smallest, 1);
    }
  EXPECT_THROW(keyShard(10, 2, 2), std::invalid_argument);
  EXPECT_THROW(keyShard(10, 0, 0), std::invalid_argument);
}

namespace {
/// Softmax attention of each row over keys [b, e) in float64: its output
/// (normalised over those keys) and LSE, rounded to float32 as a rank's
/// kernel returns them; (NaN, -inf) for a row whose scores are all -inf.
void partial(const std::vector<double> &s, const std::vector<double> &v,
             int64_t rows, int64_t nk, int64_t dv, int64_t b, int64_t e,
             std::vector<float> &out, std::vector<float> &lse) {
  out.assign(size_t(rows * dv), 0.f);
  lse.assign(size_t(rows), 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY;
    for (int64_t j = b; j < e; ++j)
      m = std::max(m, s[size_t(r * nk + j)]);
    double sum = 0;
    std::vector<double> o(size_t(dv), 0.0);
    for (int64_t j = b; j < e; ++j) {
      double w = m == -INFINITY ? 0 : std::exp(s[size_t(r * nk + j)] - m);
      sum += w;
      for (int64_t c = 0; c < dv; ++c)
        o[size_t(c)] += w * v[size_t(j * dv + c)];
    }
    for (int64_t c = 0; c < dv; ++c)
      out[size_t(r * dv + c)] = float(o[size_t(c)] / sum);
    lse[size_t(r)] = float(m + std::log(sum));
  }
}
} // namespace

TEST(ContextParallel, MergeEqualsAttentionOverAllKeys) {
  std::mt19937_64 gen(7);
  std::normal_distribution<double> n01;
  const int64_t rows = 9, nk = 1001, dv = 17;
  std::vector<double> s(size_t(rows * nk)), v(size_t(nk * dv));
  for (double &x : s)
    x = 3 * n01(gen);
  for (double &x : v)
    x = n01(gen);
  std::vector<float> whole, wholeLse;
  partial(s, v, rows, nk, dv, 0, nk, whole, wholeLse);
  for (int ranks : {1, 2, 3, 5}) {
    std::vector<std::vector<float>> outs(static_cast<size_t>(ranks)), lses(static_cast<size_t>(ranks));
    std::vector<AttentionPartial> parts;
    for (int r = 0; r < ranks; ++r) {
      auto [b, e] = keyShard(nk, r, ranks);
      partial(s, v, rows, nk, dv, b, e, outs[size_t(r)], lses[size_t(r)]);
      parts.push_back({outs[size_t(r)].data(), lses[size_t(r)].data()});
    }
    parts.push_back({}); // an empty shard: the identity
    std::vector<float> out(size_t(rows * dv), NAN), lse(size_t(rows), NAN);
    mergeAttentionPartials(parts, rows, dv, out.data(), lse.data());
    for (int64_t i = 0; i < rows * dv; ++i)
      EXPECT_NEAR(out[size_t(i)], whole[size_t(i)], 2e-6) << ranks << " ranks, element " << i;
    for (int64_t r = 0; r < rows; ++r)
      EXPECT_NEAR(lse[size_t(r)], wholeLse[size_t(r)], 2e-6) << ranks << " ranks, row " << r;
  }
}

TEST(ContextParallel, MergeAtSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = NAN;
  // Row 0: shard A finite, shard B sees no key (NaN output, -inf LSE):
  // B weighs 0. Row 1: no shard sees a key: NaN, -inf. Row 2: a +inf score
  // in A: NaN, NaN. Row 3: a NaN score in B: NaN, NaN.
  std::vector<float> oa = {1, 2, nan, nan, nan, nan, 5, 6};
  std::vector<float> la = {0.5f, -inf, inf, 1};
  std::vector<float> ob = {nan, nan, nan, nan, 3, 4, nan, nan};
  std::vector<float> lb = {-inf, -inf, 0, nan};
  std::vector<float> out(8, 0.f), lse(4, 0.f);
  mergeAttentionPartials({{oa.data(), la.data()}, {ob.data(), lb.data()}, {}}, 4, 2,
                         out.data(), lse.data());
  EXPECT_FLOAT_EQ(out[0], 1);
  EXPECT_FLOAT_EQ(out[1], 2);
  EXPECT_FLOAT_EQ(lse[0], 0.5f);
  EXPECT_TRUE(std::isnan(out[2]) && std::isnan(out[3]));
  EXPECT_EQ(lse[1], -inf);
  for (int i = 4; i < 8; ++i)
    EXPECT_TRUE(std::isnan(out[size_t(i)])) << i;
  EXPECT_TRUE(std::isnan(lse[2]));
  EXPECT_TRUE(std::isnan(lse[3]));
  // A non-finite output (an inf in a shard's V) reaches the row even where
  // the shard's weight exp(L_B - m) underflows in double.
  std::vector<float> oc = {1, 2}, lc = {0};
  std::vector<float> od = {inf, 3}, ld = {-1000};
  std::vector<float> row(2, 0.f), rowLse(1, 0.f);
  mergeAttentionPartials({{oc.data(), lc.data()}, {od.data(), ld.data()}}, 1, 2,
                         row.data(), rowLse.data());
  EXPECT_EQ(row[0], inf);
  EXPECT_FLOAT_EQ(row[1], 2);
  EXPECT_FLOAT_EQ(rowLse[0], 0);
  // Only empty shards: every row has no key.
  mergeAttentionPartials({{}, {}}, 4, 2, out.data(), lse.data());
  for (int i = 0; i < 8; ++i)
    EXPECT_TRUE(std::isnan(out[size_t(i)]));
  EXPECT_EQ(lse[0], -inf);
}

// --- TokenSelect over key shards -------------------------------------------------

namespace {
using deltaflow::test::Geometry;

/// The unsharded selection in float64 (SparseReference's tokenVote, then
/// the budget best, ties lowest key first), as global key positions.
std::vector<int64_t> referenceSelection(const Tensor &q, const Tensor &k, int64_t b,
                                        const Geometry &g, int64_t budget) {
  std::vector<double> S = deltaflow::test::tokenVote(q, k, b, g, 0);
  std::vector<int64_t> order(S.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return S[size_t(x)] > S[size_t(y)]; });
  order.resize(std::min(order.size(), size_t(budget)));
  for (int64_t &j : order)
    j += g.sinks;
  std::sort(order.begin(), order.end());
  return order;
}

/// The shard protocol of deltaflow-run shard without the communicator: the
/// ranks' statistics combined, their best votes, the global choice.
std::vector<std::vector<int64_t>> shardedSelection(const Tensor &q, const Tensor &k,
                                                   const Geometry &g, int64_t budget, int ranks) {
  const auto &qs = q.shape(), &ks = k.shape();
  const int64_t B = qs[0], hq = qs[1], hkv = ks[1], d = qs[3], nk = ks[2];
  const int64_t candBegin = g.sinks, candEnd = g.sinks + g.candidates(0);
  std::vector<TokenSelectShard> shards;
  std::vector<Tensor> keys;
  for (int r = 0; r < ranks; ++r) {
    auto [kb, ke] = keyShard(nk, r, ranks);
    Tensor part({B, hkv, ke - kb, d});
    for (int64_t bh = 0; bh < B * hkv; ++bh)
      std::copy(k.f32() + (bh * nk + kb) * d, k.f32() + (bh * nk + ke) * d,
                part.f32() + bh * (ke - kb) * d);
    keys.push_back(part);
    shards.emplace_back(q.f32(), keys.back().f32(), B, hq, hkv, d, ke - kb, kb, candBegin,
                        candEnd);
  }
  std::vector<std::vector<SoftmaxStats>> stats;
  for (const TokenSelectShard &s : shards)
    stats.push_back(s.stats());
  std::vector<SoftmaxStats> global = TokenSelectShard::combine(stats);
  std::vector<std::vector<VoteCandidate>> best;
  std::vector<const VoteCandidate *> ptrs;
  for (const TokenSelectShard &s : shards)
    best.push_back(s.bestVotes(global, budget));
  for (const auto &v : best)
    ptrs.push_back(v.data());
  return TokenSelectShard::select(ptrs, B, budget);
}
} // namespace

// Every shard count gives the unsharded float64 selection: key counts off
// the shard size, shards with no candidate (inside the sinks or the window)
// or no key at all, grouped heads (G = 4) and G = 1, batch 2, a budget
// larger than the candidates, and tied votes (repeated key rows).
TEST(ContextParallel, TokenSelectAcrossShardsEqualsUnsharded) {
  struct Case {
    int64_t B, hq, hkv, d, nk, sinks, window, budget;
  };
  for (Case c : {Case{2, 8, 2, 16, 1001, 16, 64, 37}, Case{1, 4, 4, 8, 300, 4, 8, 1},
                 Case{1, 8, 2, 16, 97, 16, 20, 500}, Case{1, 2, 1, 8, 5, 1, 1, 2},
                 Case{1, 8, 2, 32, 4099, 128, 512, 256}}) {
    Tensor q = deltaflow::test::randomTensor({c.B, c.hq, 1, c.d}, 11 + uint64_t(c.nk));
    Tensor k = deltaflow::test::randomTensor({c.B, c.hkv, c.nk, c.d}, 12 + uint64_t(c.nk));
    if (c.nk > 40) // ties: key rows 30..39 of every head repeat row 20
      for (int64_t bh = 0; bh < c.B * c.hkv; ++bh)
        for (int64_t j = 30; j < 40; ++j)
          std::copy(k.f32() + (bh * c.nk + 20) * c.d, k.f32() + (bh * c.nk + 21) * c.d,
                    k.f32() + (bh * c.nk + j) * c.d);
    Geometry g;
    g.nq = 1;
    g.nk = c.nk;
    g.sinks = c.sinks;
    g.window = c.window;
    for (int ranks : {1, 2, 3, 7}) {
      std::vector<std::vector<int64_t>> sel = shardedSelection(q, k, g, c.budget, ranks);
      ASSERT_EQ(sel.size(), size_t(c.B));
      for (int64_t b = 0; b < c.B; ++b)
        EXPECT_EQ(sel[size_t(b)], referenceSelection(q, k, b, g, c.budget))
            << c.nk << " keys, budget " << c.budget << ", " << ranks << " ranks, batch " << b;
    }
  }
  EXPECT_THROW(TokenSelectShard(nullptr, nullptr, 1, 6, 4, 8, 0, 0, 0, 0), std::invalid_argument);
}

// Equal logits on different ranks: every candidate key row zero but a few
// (zero padding), so most votes tie exactly and the lowest keys must win
// on every shard count, as unsharded. (Votes built from each shard's own
// maximum differed by rounding and chose keys by rank.)
TEST(ContextParallel, TokenSelectTiesAcrossShardsGoToTheLowestKey) {
  const int64_t nk = 3001, hq = 8, hkv = 2, d = 16;
  Tensor q = deltaflow::test::randomTensor({1, hq, 1, d}, 5);
  Tensor k = deltaflow::test::randomTensor({1, hkv, nk, d}, 6);
  for (int64_t h = 0; h < hkv; ++h)
    for (int64_t j = 16; j < nk; ++j)
      if (j < 1600 || j > 1609)
        std::fill(k.f32() + (h * nk + j) * d, k.f32() + (h * nk + j + 1) * d, 0.0f);
  Geometry g;
  g.nq = 1;
  g.nk = nk;
  g.sinks = 16;
  g.window = 64;
  std::vector<int64_t> want = referenceSelection(q, k, 0, g, 64);
  for (int ranks : {1, 2, 3, 5})
    EXPECT_EQ(shardedSelection(q, k, g, 64, ranks)[0], want) << ranks << " ranks";
}

// A NaN logit (a NaN in a key) makes its head's softmax NaN, so every vote
// is NaN and the lowest candidates are chosen, on every shard count (NaN
// first in the order keeps the sort defined).
TEST(ContextParallel, TokenSelectWithANaNLogitIsTheSameOnEveryShardCount) {
  const int64_t nk = 200, hq = 4, hkv = 4, d = 8;
  Tensor q = deltaflow::test::randomTensor({1, hq, 1, d}, 7);
  Tensor k = deltaflow::test::randomTensor({1, hkv, nk, d}, 8);
  k.f32()[(0 * nk + 150) * d] = NAN;
  Geometry g;
  g.nq = 1;
  g.nk = nk;
  g.sinks = 4;
  g.window = 8;
  for (int ranks : {1, 2, 3})
    EXPECT_EQ(shardedSelection(q, k, g, 5, ranks)[0], (std::vector<int64_t>{4, 5, 6, 7, 8}))
        << ranks << " ranks";
}
