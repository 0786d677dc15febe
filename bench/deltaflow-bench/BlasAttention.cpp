//===- BlasAttention.cpp - GEMM-softmax-GEMM baseline ---------------------===//

#include "BlasAttention.h"

#include <cblas.h>

#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace deltaflow::bench {

rt::Tensor blasAttention(const rt::Tensor &q, const rt::Tensor &k,
                         const rt::Tensor &v, bool causal, int threads) {
  // Heads run in parallel on TBB, each with single-threaded sgemm: the
  // softmax between the two GEMMs is parallel too.
  openblas_set_num_threads(1);
  const int64_t Hq = q.shape()[1], Nq = q.shape()[2], D = q.shape()[3],
                Hkv = k.shape()[1], Nk = k.shape()[2], Dv = v.shape()[3];
  const int64_t G = Hq / Hkv, offset = Nk - Nq;
  const float scale = 1.0f / std::sqrt(float(D));
  rt::Tensor out({1, Hq, Nq, Dv});
  const int64_t rowBlock = 256;
  tbb::enumerable_thread_specific<std::vector<float>> scratch(
      size_t(std::max<int64_t>(rowBlock, G)) * size_t(Nk));
  auto softmaxRows = [](std::vector<float> &s, int64_t rows, int64_t keys,
                        auto lastKey) {
    for (int64_t i = 0; i < rows; ++i) {
      float *row = s.data() + i * keys;
      int64_t last = lastKey(i);
      float m = -INFINITY;
      for (int64_t j = 0; j <= last; ++j)
        m = std::max(m, row[j]);
      float l = 0;
      for (int64_t j = 0; j <= last; ++j)
        l += row[j] = std::exp(row[j] - m);
      float inv = 1.0f / l;
      for (int64_t j = 0; j <= last; ++j)
        row[j] *= inv;
      for (int64_t j = last + 1; j < keys; ++j)
        row[j] = 0.0f;
    }
  };
  if (Nq == 1) {
    // Decode: the G query heads of a group form one G x D matrix, so each K
    // and V row is read once per group (sgemm with M = G).
    tbb::task_arena(threads).execute([&] {
    tbb::parallel_for(int64_t(0), Hkv, [&](int64_t kv) {
      std::vector<float> &s = scratch.local();
      const float *K = k.f32() + kv * Nk * D, *V = v.f32() + kv * Nk * Dv;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(G), int(Nk),
                  int(D), scale, q.f32() + kv * G * D, int(D), K, int(D), 0.0f,
                  s.data(), int(Nk));
      softmaxRows(s, G, Nk, [&](int64_t) { return Nk - 1; });
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(G), int(Dv),
                  int(Nk), 1.0f, s.data(), int(Nk), V, int(Dv), 0.0f,
                  out.f32() + kv * G * Dv, int(Dv));
    });
    });
    return out;
  }
  tbb::task_arena(threads).execute([&] {
  tbb::parallel_for(int64_t(0), Hq, [&](int64_t h) {
    std::vector<float> &s = scratch.local();
    const float *K = k.f32() + (h / G) * Nk * D;
    const float *V = v.f32() + (h / G) * Nk * Dv;
    for (int64_t r0 = 0; r0 < Nq; r0 += rowBlock) {
      int64_t rows = std::min(rowBlock, Nq - r0);
      int64_t keys = causal ? std::min(Nk, r0 + rows + offset) : Nk;
      const float *Q = q.f32() + (h * Nq + r0) * D;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys),
                  int(D), scale, Q, int(D), K, int(D), 0.0f, s.data(), int(keys));
      softmaxRows(s, rows, keys, [&](int64_t i) {
        return causal ? std::min(keys - 1, r0 + i + offset) : keys - 1;
      });
      float *O = out.f32() + (h * Nq + r0) * Dv;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(Dv),
                  int(keys), 1.0f, s.data(), int(keys), V, int(Dv), 0.0f, O,
                  int(Dv));
    }
  });
  });
  return out;
}

} // namespace deltaflow::bench
