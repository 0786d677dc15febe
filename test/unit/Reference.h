//===- Reference.h - float64 reference attention for tests ------*- C++ -*-===//
#ifndef DELTAFLOW_TEST_UNIT_REFERENCE_H
#define DELTAFLOW_TEST_UNIT_REFERENCE_H

#include "deltaflow/Runtime/Tensor.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace deltaflow::test {

/// Fresh random N(0, 1) values (never zeros) in a float32 tensor.
inline rt::Tensor randomTensor(std::vector<int64_t> shape, uint64_t seed) {
  return rt::randomNormal(std::move(shape), seed);
}

struct RefResult {
  std::vector<double> out, lse;
};

/// Attention in double precision. `offset` < 0 means the default, Nk - Nq.
/// Query head h reads KV head h / (Hq / Hkv).
inline RefResult referenceAttention(const rt::Tensor &q, const rt::Tensor &k,
                                    const rt::Tensor &v, double scale,
                                    bool causal, int64_t offset = -1) {
  int64_t B = q.shape()[0], Hq = q.shape()[1], Nq = q.shape()[2],
          D = q.shape()[3], Hkv = k.shape()[1], Nk = k.shape()[2],
          Dv = v.shape()[3];
  if (offset < 0)
    offset = Nk - Nq;
  int64_t G = Hq / Hkv;
  RefResult r;
  r.out.assign(B * Hq * Nq * Dv, 0.0);
  r.lse.assign(B * Hq * Nq, 0.0);
  std::vector<double> s(Nk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Nq; ++i) {
        const float *qr = q.f32() + ((b * Hq + h) * Nq + i) * D;
        double m = -std::numeric_limits<double>::infinity();
        int64_t last = causal ? std::min(Nk - 1, i + offset) : Nk - 1;
        for (int64_t j = 0; j <= last; ++j) {
          const float *kr = k.f32() + ((b * Hkv + h / G) * Nk + j) * D;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(qr[d]) * double(kr[d]);
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        double l = 0;
        double *o = r.out.data() + ((b * Hq + h) * Nq + i) * Dv;
        for (int64_t j = 0; j <= last; ++j) {
          double p = std::exp(s[j] - m);
          l += p;
          const float *vr = v.f32() + ((b * Hkv + h / G) * Nk + j) * Dv;
          for (int64_t e = 0; e < Dv; ++e)
            o[e] += p * double(vr[e]);
        }
        for (int64_t e = 0; e < Dv; ++e)
          o[e] /= l;
        r.lse[(b * Hq + h) * Nq + i] = m + std::log(l);
      }
  return r;
}

/// Relative L2 error; NaN if any element of `got` is not finite.
inline double relativeL2(const rt::Tensor &got, const std::vector<double> &ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double g = got.f32()[i];
    if (!std::isfinite(g))
      return std::numeric_limits<double>::quiet_NaN();
    num += (g - ref[i]) * (g - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

} // namespace deltaflow::test

#endif
