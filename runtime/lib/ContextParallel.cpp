//===- ContextParallel.cpp - key shards and the LSE merge ------------------===//

#include "deltaflow/Runtime/ContextParallel.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace deltaflow::rt {

std::pair<int64_t, int64_t> keyShard(int64_t nk, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks || nk < 0)
    throw std::invalid_argument("keyShard: rank " + std::to_string(rank) +
                                " of " + std::to_string(ranks) + " over " +
                                std::to_string(nk) + " keys");
  int64_t base = nk / ranks, extra = nk % ranks;
  int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

void mergeAttentionPartials(const std::vector<AttentionPartial> &parts,
                            int64_t rows, int64_t dv, float *out, float *lse) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> acc(size_t(dv > 0 ? dv : 0));
  for (int64_t r = 0; r < rows; ++r) {
    double m = -inf;
    bool isNan = false;
    for (const AttentionPartial &p : parts) {
      double l = p.lse ? double(p.lse[r]) : -inf;
      isNan |= std::isnan(l);
      m = std::max(m, l);
    }
    if (isNan || m == inf) {
      // A NaN or +inf score: the row is NaN, as the unsharded kernel's.
      if (out)
        for (int64_t e = 0; e < dv; ++e)
          out[r * dv + e] = float(nan);
      if (lse)
        lse[r] = float(nan);
      continue;
    }
    if (m == -inf) {
      if (out)
        for (int64_t e = 0; e < dv; ++e)
          out[r * dv + e] = float(nan);
      if (lse)
        lse[r] = float(-inf);
      continue;
    }
    double sum = 0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (const AttentionPartial &p : parts) {
      double l = p.lse ? double(p.lse[r]) : -inf;
      if (l == -inf)
        continue; // weighs 0: its output (NaN for a row with no key) is not read
      // Kept at or above the smallest normal double: a shard whose weight
      // underflows still passes on a non-finite output (an inf or NaN in its
      // V), as the unsharded kernel does for any key a row sees.
      double w = std::max(std::exp(l - m), std::numeric_limits<double>::min());
      sum += w;
      if (out && p.out)
        for (int64_t e = 0; e < dv; ++e)
          acc[size_t(e)] += w * double(p.out[r * dv + e]);
    }
    if (out)
      for (int64_t e = 0; e < dv; ++e)
        out[r * dv + e] = float(acc[size_t(e)] / sum);
    if (lse)
      lse[r] = float(m + std::log(sum));
  }
}

// --- TokenSelect over key shards ---------------------------------------------

namespace {
/// 16 float lanes (GCC/Clang vector extension: one AVX-512 register, two
/// AVX2 ones, four SSE ones).
typedef float Lanes16 __attribute__((vector_size(64)));
typedef float Lanes8 __attribute__((vector_size(32)));
typedef float Lanes4 __attribute__((vector_size(16)));

/// q_r · k for R query rows (row-major, `d` floats each): 16 independent
/// float lanes per row (lane l sums elements l, l + 16, ...), R rows at
/// once so their sums do not wait on one another, the accumulators in
/// registers; then the lanes pairwise.
template <int R>
__attribute__((always_inline)) inline void dotBlock(const float *q, const float *k, int64_t d, float *out) {
  constexpr int kLanes = 16;
  const int64_t body = d / kLanes * kLanes;
  Lanes16 acc[R];
  for (int r = 0; r < R; ++r)
    acc[r] = Lanes16{};
  for (int64_t e = 0; e < body; e += kLanes) {
    Lanes16 kv, qv; // unaligned loads (passing these by value changes the ABI)
    std::memcpy(&kv, k + e, sizeof kv);
    for (int r = 0; r < R; ++r) {
      std::memcpy(&qv, q + r * d + e, sizeof qv);
      acc[r] += qv * kv;
    }
  }
  for (int r = 0; r < R; ++r) {
    // The lanes pairwise, halving in registers (a scalar loop over them
    // was most of the time).
    Lanes8 h8 = __builtin_shufflevector(acc[r], acc[r], 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(acc[r], acc[r], 8, 9, 10, 11, 12, 13, 14, 15);
    Lanes4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) +
                __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
    float sum = (h4[0] + h4[2]) + (h4[1] + h4[3]);
    for (int64_t e = body; e < d; ++e)
      sum += q[r * d + e] * k[e];
    out[r] = sum;
  }
}

/// q_r · k for `rows` query rows. Cloned for AVX-512 and AVX2 (chosen at
/// load time), the widths the compiled selection kernels use.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void dotRows(const float *q, int64_t rows, const float *k, int64_t d, float *out) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    dotBlock<4>(q + r * d, k, d, out + r);
  for (; r < rows; ++r)
    dotBlock<1>(q + r * d, k, d, out + r);
}
} // namespace

TokenSelectShard::TokenSelectShard(const float *q, const float *k, int64_t batch, int64_t hq,
                                   int64_t hkv, int64_t d, int64_t n, int64_t keyBegin,
                                   int64_t candBegin, int64_t candEnd)
    : batch_(batch), hq_(hq) {
  if (batch < 0 || hq < 1 || hkv < 1 || hq % hkv != 0 || d < 1 || n < 0 || keyBegin < 0 ||
      candBegin < 0 || candEnd < candBegin)
    throw std::invalid_argument(
        "TokenSelectShard: batch " + std::to_string(batch) + ", " + std::to_string(hq) +
        " query heads over " + std::to_string(hkv) + " key heads, dim " + std::to_string(d) +
        ", keys [" + std::to_string(keyBegin) + ", +" + std::to_string(n) + "), candidates [" +
        std::to_string(candBegin) + ", " + std::to_string(candEnd) + ")");
  first_ = std::max(candBegin, keyBegin);
  count_ = std::max<int64_t>(std::min(candEnd, keyBegin + n) - first_, 0);
  const int64_t G = hq / hkv, count = count_, local0 = first_ - keyBegin;
  const float temperature = float(1.0 / std::sqrt(double(d)));
  // The query rows pre-scaled by the temperature, so a logit is one dot.
  std::vector<float> qs(size_t(batch * hq * d));
  for (size_t i = 0; i < qs.size(); ++i)
    qs[i] = q[i] * temperature;
  logits_.assign(size_t(batch * hq * count), 0.0f);
  // Each key row is read once, for the G query heads of its group.
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, batch * hkv * count, 1024),
      [&](const tbb::blocked_range<int64_t> &r) {
        float dots[256];
        for (int64_t i = r.begin(); i < r.end(); ++i) {
          const int64_t j = i % count, bh = i / count, b = bh / hkv, hk = bh % hkv;
          const float *kr = k + ((b * hkv + hk) * n + local0 + j) * d;
          for (int64_t g0 = 0; g0 < G; g0 += 256) {
            const int64_t rows = std::min<int64_t>(256, G - g0);
            const int64_t h0 = hk * G + g0;
            dotRows(qs.data() + (b * hq + h0) * d, rows, kr, d, dots);
            for (int64_t g = 0; g < rows; ++g)
              logits_[size_t((b * hq + h0 + g) * count + j)] = dots[g];
          }
        }
      });
}

std::vector<SoftmaxStats> TokenSelectShard::stats() const {
  std::vector<SoftmaxStats> st(size_t(batch_ * hq_));
  tbb::parallel_for(int64_t(0), batch_ * hq_, [&](int64_t bh) {
    const float *s = logits_.data() + bh * count_;
    SoftmaxStats &x = st[size_t(bh)];
    float m = -std::numeric_limits<float>::infinity();
    bool nan = false;
    for (int64_t j = 0; j < count_; ++j) {
      nan |= std::isnan(s[j]);
      m = std::max(m, s[j]);
    }
    if (count_ == 0)
      return;
    x.max = nan ? std::numeric_limits<double>::quiet_NaN() : double(m);
    double sum = 0;
    for (int64_t j = 0; j < count_; ++j)
      sum += std::exp(double(s[j]) - x.max);
    x.sum = sum;
  });
  return st;
}

std::vector<SoftmaxStats>
TokenSelectShard::combine(const std::vector<std::vector<SoftmaxStats>> &perRank) {
  if (perRank.empty())
    return {};
  std::vector<SoftmaxStats> g(perRank[0].size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i < g.size(); ++i) {
    bool isNan = false;
    for (const auto &r : perRank) {
      isNan |= std::isnan(r.at(i).max) || std::isnan(r[i].sum);
      g[i].max = std::max(g[i].max, r[i].max);
    }
    if (isNan) { // a NaN logit anywhere: the head's softmax is NaN everywhere
      g[i] = {nan, nan};
      continue;
    }
    for (const auto &r : perRank)
      if (r[i].sum > 0) // an empty shard (−inf, 0) adds nothing
        g[i].sum += r[i].sum * std::exp(r[i].max - g[i].max);
  }
  return g;
}

namespace {
/// Best first; ties: the lowest key first (the compiled top-k's order). A
/// NaN vote ranks above every number, as the compiled selection's
/// order-preserving key puts it (a total order, so the sort is defined).
bool better(const VoteCandidate &a, const VoteCandidate &b) {
  const bool na = std::isnan(a.vote), nb = std::isnan(b.vote);
  if (na != nb)
    return na;
  if (!na && a.vote != b.vote)
    return a.vote > b.vote;
  return a.key < b.key;
}
} // namespace

std::vector<VoteCandidate> TokenSelectShard::bestVotes(const std::vector<SoftmaxStats> &global,
                                                       int64_t budget) const {
  if (int64_t(global.size()) != batch_ * hq_ || budget < 0)
    throw std::invalid_argument("TokenSelectShard::bestVotes: " + std::to_string(global.size()) +
                                " statistics for " + std::to_string(batch_ * hq_) +
                                " (batch, head) pairs, budget " + std::to_string(budget));
  std::vector<VoteCandidate> best(size_t(batch_ * budget));
  std::vector<VoteCandidate> votes(static_cast<size_t>(count_));
  std::vector<double> inv(static_cast<size_t>(hq_));
  for (int64_t b = 0; b < batch_; ++b) {
    for (int64_t h = 0; h < hq_; ++h)
      inv[size_t(h)] = 1.0 / global[size_t(b * hq_ + h)].sum;
    // Each vote from its logits and the global statistics only, heads in
    // order, so equal logits get equal votes on every rank (ties then go
    // to the lowest key, as unsharded) and on any number of threads.
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, count_, 2048), [&](const tbb::blocked_range<int64_t> &r) {
          for (int64_t j = r.begin(); j < r.end(); ++j)
            votes[size_t(j)] = {0.0, first_ + j};
          for (int64_t h = 0; h < hq_; ++h) {
            const double m = global[size_t(b * hq_ + h)].max, f = inv[size_t(h)];
            const float *s = logits_.data() + (b * hq_ + h) * count_;
            for (int64_t j = r.begin(); j < r.end(); ++j)
              votes[size_t(j)].vote += std::exp(double(s[j]) - m) * f;
          }
        });
    int64_t keep = std::min(budget, count_);
    std::partial_sort(votes.begin(), votes.begin() + keep, votes.end(), better);
    std::copy(votes.begin(), votes.begin() + keep, best.begin() + b * budget);
  }
  return best;
}

std::vector<std::vector<int64_t>>
TokenSelectShard::select(const std::vector<const VoteCandidate *> &perRank, int64_t batch,
                         int64_t budget) {
  std::vector<std::vector<int64_t>> sel(static_cast<size_t>(batch));
  std::vector<VoteCandidate> all;
  for (int64_t b = 0; b < batch; ++b) {
    all.clear();
    for (const VoteCandidate *r : perRank)
      for (int64_t i = 0; i < budget; ++i)
        if (r[b * budget + i].key >= 0)
          all.push_back(r[b * budget + i]);
    size_t keep = std::min(all.size(), size_t(budget));
    std::partial_sort(all.begin(), all.begin() + std::ptrdiff_t(keep), all.end(), better);
    for (size_t i = 0; i < keep; ++i)
      sel[size_t(b)].push_back(all[i].key);
    std::sort(sel[size_t(b)].begin(), sel[size_t(b)].end());
  }
  return sel;
}

} // namespace deltaflow::rt
