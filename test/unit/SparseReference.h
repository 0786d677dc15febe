//===- SparseReference.h - float64 references for sparse attention -*- C++ -*-===//
//
// Straight from docs/design.md's definitions, in double precision, one query row
// at a time: chunk geometry, TokenSelect's soft vote, adaptive masses,
// Quest page scores, exact attention over an explicit key set, the strided
// dense rows and the Delta combination.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_TEST_UNIT_SPARSEREFERENCE_H
#define DELTAFLOW_TEST_UNIT_SPARSEREFERENCE_H

#include "Reference.h"

#include <algorithm>
#include "deltaflow/Common/SparseGeometry.h"

#include <numeric>
#include <set>

namespace deltaflow::test {

struct Geometry {
  int64_t nq = 0, nk = 0, sinks = 0, window = 0, chunk = 1;
  int64_t offset = -1; ///< -1: Nk - Nq
  int64_t first() const {
    return geometry::firstQueryPosition<int64_t>(
        nq, nk, offset < 0 ? std::nullopt : std::optional<int64_t>(offset));
  }
  int64_t chunks() const { return geometry::chunkCount<int64_t>(nq, chunk); }
  int64_t chunkStart(int64_t c) const {
    return geometry::chunkStart<int64_t>(first(), c, chunk);
  }
  /// Candidates are [sinks, sinks + candidates(c)).
  int64_t candidates(int64_t c) const {
    return geometry::candidateCount<int64_t>(chunkStart(c), nk, sinks, window);
  }
};

inline const float *row(const rt::Tensor &t, int64_t b, int64_t h, int64_t i) {
  const auto &s = t.shape();
  return t.f32() + ((b * s[1] + h) * s[2] + i) * s[3];
}

inline double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += double(a[i]) * double(b[i]);
  return s;
}

/// Mean query of chunk c for head h.
inline std::vector<double> chunkMean(const rt::Tensor &q, int64_t b, int64_t h,
                                     const Geometry &g, int64_t c) {
  int64_t D = q.shape()[3];
  std::vector<double> m(D, 0.0);
  int64_t lo = c * g.chunk, hi = std::min(g.nq, lo + g.chunk);
  for (int64_t i = lo; i < hi; ++i)
    for (int64_t d = 0; d < D; ++d)
      m[d] += row(q, b, h, i)[d];
  for (double &x : m)
    x /= double(hi - lo);
  return m;
}

/// Keys every query of chunk c keeps: the sinks and [s0 - window, s0).
inline std::vector<int64_t> keptKeys(const Geometry &g, int64_t c) {
  std::vector<int64_t> keys;
  int64_t s0 = g.chunkStart(c);
  for (int64_t j = 0; j < g.sinks && j < std::min(s0, g.nk); ++j)
    keys.push_back(j);
  for (int64_t j = geometry::windowBegin<int64_t>(s0, g.sinks, g.window); j < std::min(s0, g.nk); ++j)
    keys.push_back(j);
  return keys;
}

/// softmax over chunk c's candidates of qbar_h . k_{h/G}(sinks + j) / sqrt(D)
/// (with `keptShare`, over the candidates and keptKeys, whose share of the
/// mass is returned there).
inline std::vector<double> headProbs(const rt::Tensor &q, const rt::Tensor &k,
                                     int64_t b, int64_t h, const Geometry &g,
                                     int64_t c, double *keptShare = nullptr) {
  int64_t D = q.shape()[3], G = q.shape()[1] / k.shape()[1];
  std::vector<double> qbar = chunkMean(q, b, h, g, c);
  int64_t n = g.candidates(c);
  std::vector<double> s(n);
  double m = -1e300;
  for (int64_t j = 0; j < n; ++j) {
    const float *kr = row(k, b, h / G, g.sinks + j);
    double acc = 0;
    for (int64_t d = 0; d < D; ++d)
      acc += qbar[d] * kr[d];
    s[j] = acc / std::sqrt(double(D));
    m = std::max(m, s[j]);
  }
  std::vector<double> kept;
  if (keptShare)
    for (int64_t key : keptKeys(g, c)) {
      const float *kr = row(k, b, h / G, key);
      double acc = 0;
      for (int64_t d = 0; d < D; ++d)
        acc += qbar[d] * kr[d];
      kept.push_back(acc / std::sqrt(double(D)));
      m = std::max(m, kept.back());
    }
  double l = 0, lk = 0;
  for (double &x : s)
    l += (x = std::exp(x - m));
  for (double x : kept)
    lk += std::exp(x - m);
  for (double &x : s)
    x /= l + lk;
  if (keptShare)
    *keptShare = lk / (l + lk);
  return s;
}

/// TokenSelect: S(j) = sum over all query heads of headProbs.
inline std::vector<double> tokenVote(const rt::Tensor &q, const rt::Tensor &k,
                                     int64_t b, const Geometry &g, int64_t c) {
  std::vector<double> S(g.candidates(c), 0.0);
  for (int64_t h = 0; h < q.shape()[1]; ++h) {
    std::vector<double> p = headProbs(q, k, b, h, g, c);
    for (size_t j = 0; j < S.size(); ++j)
      S[j] += p[j];
  }
  return S;
}

/// Adaptive: mass(j) = mean over KV head hk's group of headProbs with the
/// kept keys; `keptMass` gets their mean share.
inline std::vector<double> groupMass(const rt::Tensor &q, const rt::Tensor &k,
                                     int64_t b, int64_t hk, const Geometry &g,
                                     int64_t c, double &keptMass) {
  int64_t G = q.shape()[1] / k.shape()[1];
  std::vector<double> M(g.candidates(c), 0.0);
  keptMass = 0;
  for (int64_t h = hk * G; h < (hk + 1) * G; ++h) {
    double share = 0;
    std::vector<double> p = headProbs(q, k, b, h, g, c, &share);
    keptMass += share / double(G);
    for (size_t j = 0; j < M.size(); ++j)
      M[j] += p[j] / double(G);
  }
  return M;
}

/// Quest: score of each page (of `page` keys from `sinks`) for KV head hk.
inline std::vector<double> pageScores(const rt::Tensor &q, const rt::Tensor &k,
                                      int64_t b, int64_t hk, const Geometry &g,
                                      int64_t c, int64_t page) {
  int64_t D = q.shape()[3], G = q.shape()[1] / k.shape()[1];
  int64_t pages = (g.candidates(c) + page - 1) / page;
  std::vector<double> score(pages, 0.0);
  for (int64_t pg = 0; pg < pages; ++pg) {
    std::vector<double> lo(D, 1e300), hi(D, -1e300);
    for (int64_t t = 0; t < page; ++t) {
      int64_t key = g.sinks + pg * page + t;
      if (key >= g.nk)
        break;
      const float *kr = row(k, b, hk, key);
      for (int64_t d = 0; d < D; ++d)
        lo[d] = std::min(lo[d], double(kr[d])), hi[d] = std::max(hi[d], double(kr[d]));
    }
    for (int64_t h = hk * G; h < (hk + 1) * G; ++h) {
      std::vector<double> qbar = chunkMean(q, b, h, g, c);
      for (int64_t d = 0; d < D; ++d)
        score[pg] += std::max(qbar[d] * lo[d], qbar[d] * hi[d]);
    }
  }
  return score;
}

/// The keys query row i sees: sinks, the chunk's selection (entries >= 0 of
/// `selected`), and the local window, under the causal rule; each once.
/// With a selection the window is anchored at the chunk start; without one
/// (`sliding`) it is per query: p - j <= window (FlashAttention's
/// window_size=(window, 0)).
inline std::vector<int64_t> sparseKeys(const Geometry &g, int64_t i,
                                       const std::vector<int32_t> &selected,
                                       bool sliding = false) {
  int64_t pos = g.first() + i;
  int64_t s0 = sliding ? pos : g.chunkStart(i / g.chunk);
  std::set<int64_t> keys;
  for (int64_t j = 0; j < std::min(g.sinks, pos + 1); ++j)
    keys.insert(j);
  for (int32_t j : selected)
    if (j >= 0 && j <= pos)
      keys.insert(j);
  for (int64_t j = geometry::windowBegin<int64_t>(s0, g.sinks, g.window); j <= pos && j < g.nk; ++j)
    keys.insert(j);
  return {keys.begin(), keys.end()};
}

/// Exact attention of query row (b, h, qrow) at position `pos` over `keys`.
inline void attendRow(const rt::Tensor &q, const rt::Tensor &k,
                      const rt::Tensor &v, int64_t b, int64_t h, int64_t qrow,
                      const std::vector<int64_t> &keys, double scale,
                      double *out, double *lse) {
  int64_t D = q.shape()[3], Dv = v.shape()[3], G = q.shape()[1] / k.shape()[1];
  std::vector<double> s(keys.size());
  double m = -1e300;
  for (size_t t = 0; t < keys.size(); ++t) {
    s[t] = scale * dot(row(q, b, h, qrow), row(k, b, h / G, keys[t]), D);
    m = std::max(m, s[t]);
  }
  double l = 0;
  std::fill(out, out + Dv, 0.0);
  for (size_t t = 0; t < keys.size(); ++t) {
    double p = std::exp(s[t] - m);
    l += p;
    const float *vr = row(v, b, h / G, keys[t]);
    for (int64_t e = 0; e < Dv; ++e)
      out[e] += p * vr[e];
  }
  for (int64_t e = 0; e < Dv; ++e)
    out[e] /= l;
  if (lse)
    *lse = m + std::log(l);
}

/// Attention of every (batch, head, query row) over the keys
/// `keysOf(b, h, i)` returns.
template <typename KeysOf>
RefResult referenceOver(const rt::Tensor &q, const rt::Tensor &k,
                        const rt::Tensor &v, const Geometry &g, double scale,
                        KeysOf keysOf) {
  int64_t B = q.shape()[0], Hq = q.shape()[1], Dv = v.shape()[3];
  RefResult r;
  r.out.assign(B * Hq * g.nq * Dv, 0.0);
  r.lse.assign(B * Hq * g.nq, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < g.nq; ++i) {
        int64_t at = (b * Hq + h) * g.nq + i;
        attendRow(q, k, v, b, h, i, keysOf(b, h, i), scale,
                  r.out.data() + at * Dv, r.lse.data() + at);
      }
  return r;
}

/// Sparse attention with `idx` [B, Hs, C, slots] (or none).
inline RefResult referenceSparse(const rt::Tensor &q, const rt::Tensor &k,
                                 const rt::Tensor &v, const rt::Tensor *idx,
                                 const Geometry &g, double scale) {
  int64_t G = q.shape()[1] / k.shape()[1];
  return referenceOver(q, k, v, g, scale, [&](int64_t b, int64_t h, int64_t i) {
    std::vector<int32_t> sel;
    if (idx) {
      const auto &s = idx->shape();
      int64_t hs = s[1] == 1 ? 0 : h / G, c = i / g.chunk;
      const int32_t *p = idx->i32() + ((b * s[1] + hs) * s[2] + c) * s[3];
      sel.assign(p, p + s[3]);
    }
    return sparseKeys(g, i, sel, idx == nullptr);
  });
}

/// Exact causal attention of every query row over keys [0, pos]: what a
/// sparse kernel computes when the context fits its pattern (the dense
/// fallback).
inline RefResult referenceCausal(const rt::Tensor &q, const rt::Tensor &k,
                                 const rt::Tensor &v, const Geometry &g,
                                 double scale) {
  return referenceOver(q, k, v, g, scale, [&](int64_t, int64_t, int64_t i) {
    std::vector<int64_t> keys(size_t(std::min(g.first() + i + 1, g.nk)));
    std::iota(keys.begin(), keys.end(), 0);
    return keys;
  });
}

/// Rows attn.dense_rows allocates beyond the strided ones.
inline int64_t tailRows(int64_t stride) {
  return geometry::deltaExtraRows(stride);
}

/// Dense tail rows of a call that `after` prompt rows follow: the tail is
/// the prompt's last (nq mod s) + max(128, s) rows (docs/design.md,
/// "Δ-correction"), so a call far from the end has none.
inline int64_t deltaTail(int64_t nq, int64_t stride, int64_t after = 0) {
  return geometry::deltaTailRows<int64_t>(nq, stride, after);
}

/// attn.dense_rows: rows 0, s, 2s, ..., then the last deltaTail rows, then
/// unused rows (-1, zero in the result) up to ceil(nq/s) + tailRows(s).
inline std::vector<int64_t> denseRowMap(int64_t nq, int64_t stride,
                                        int64_t after = 0) {
  std::vector<int64_t> rows;
  int64_t nS = (nq + stride - 1) / stride, T = tailRows(stride),
          tail = deltaTail(nq, stride, after);
  for (int64_t r = 0; r < nS; ++r)
    rows.push_back(r * stride);
  for (int64_t r = 0; r < T; ++r)
    rows.push_back(r < tail ? nq - tail + r : -1);
  return rows;
}

/// Delta Attention combination, from docs/design.md.
inline std::vector<double> referenceDelta(const rt::Tensor &sparse,
                                          const rt::Tensor &rows,
                                          int64_t stride, int64_t after = 0) {
  int64_t B = sparse.shape()[0], H = sparse.shape()[1],
          nq = sparse.shape()[2], Dv = sparse.shape()[3];
  int64_t nS = (nq + stride - 1) / stride;
  int64_t tail = deltaTail(nq, stride, after);
  std::vector<double> out(sparse.numel());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t e = 0; e < Dv; ++e) {
          double o;
          if (i >= nq - tail) {
            o = row(rows, b, h, nS + i - (nq - tail))[e];
          } else {
            int64_t m = i / stride;
            o = double(row(sparse, b, h, i)[e]) + row(rows, b, h, m)[e] -
                row(sparse, b, h, m * stride)[e];
          }
          out[((b * H + h) * nq + i) * Dv + e] = o;
        }
  return out;
}

} // namespace deltaflow::test

#endif
