//===- Machine.cpp - FMA-loop peak and STREAM triad -----------------------===//

#include "Machine.h"

#include <cstdio>

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace deltaflow::bench {

namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 16 independent accumulator chains hide the FMA latency.
__attribute__((target("avx512f"))) float fmaLoop512(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i)
    acc[i] = _mm512_set1_ps(float(i));
  __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i)
    s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fmaLoop256(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm256_set1_ps(float(i));
  __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i)
    s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

} // namespace

MachinePeak measureMachine(int threads) {
  MachinePeak peak;
  tbb::task_arena arena(threads);
  bool avx512 = __builtin_cpu_supports("avx512f");
  peak.isa = avx512 ? "avx512 fma" : "avx2 fma";
  const long iters = 20'000'000;
  double flopsPerCall = avx512 ? iters * 16.0 * 16 * 2 : iters * 12.0 * 8 * 2;
  volatile float sink = 0;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    arena.execute([&] {
      tbb::parallel_for(0, threads, [&](int) {
        sink = sink + (avx512 ? fmaLoop512(iters) : fmaLoop256(iters));
      });
    });
    best = std::max(best, threads * flopsPerCall / seconds(t0) / 1e9);
  }
  peak.fmaGflops = best;

  // STREAM triad a = b + s*c over 3 x 128 MiB of doubles (24 bytes/element).
  const size_t n = size_t(16) << 20;
  std::unique_ptr<double[]> a(new double[n]), b(new double[n]), c(new double[n]);
  auto chunks = [&](auto fn) {
    arena.execute([&] {
      tbb::parallel_for(0, threads, [&](int t) {
        size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        fn(lo, hi);
      }, tbb::static_partitioner());
    });
  };
  chunks([&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i)
      a[i] = 0, b[i] = 1.0 + double(i % 7), c[i] = 2.0;
  });
  best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    chunks([&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i)
        a[i] = b[i] + 3.0 * c[i];
    });
    best = std::max(best, 24.0 * double(n) / seconds(t0) / 1e9);
  }
  peak.streamGBs = best;
  sink = sink + float(a[n / 2]);
  return peak;
}

void printMachine(const MachinePeak &peak, int threads) {
  std::printf("machine: %.1f GFLOP/s fp32 (%s loop), %.1f GB/s STREAM triad, "
              "%d threads\n",
              peak.fmaGflops, peak.isa.c_str(), peak.streamGBs, threads);
}

} // namespace deltaflow::bench
