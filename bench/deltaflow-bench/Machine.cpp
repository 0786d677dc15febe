//===- Machine.cpp - FMA-loop peak and STREAM triad -----------------------===//

#include "Machine.h"

#include <cstdio>

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace deltaflow::bench {

namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// `Chains` independent accumulator chains of `V` (a GCC vector of floats)
/// hide the FMA latency; inlined into a function compiled for the ISA, so
/// `acc * a + b` becomes one fused multiply-add per vector.
template <typename V, int Chains>
__attribute__((always_inline)) inline float fmaChains(long iters) {
  V acc[Chains];
  for (int i = 0; i < Chains; ++i)
    for (int l = 0; l < int(sizeof(V) / sizeof(float)); ++l)
      acc[i][l] = float(i);
  V a = acc[0] * 0.0f + 0.999999f, b = acc[0] * 0.0f + 1e-7f;
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < Chains; ++i)
      acc[i] = acc[i] * a + b;
  V s = acc[0];
  for (int i = 1; i < Chains; ++i)
    s += acc[i];
  float sum = 0;
  for (int l = 0; l < int(sizeof(V) / sizeof(float)); ++l)
    sum += s[l];
  return sum;
}

typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));

// 16 chains of 16 lanes (AVX-512), 12 of 8 (AVX2: 16 registers).
__attribute__((target("avx512f,fma"))) float fmaLoop512(long iters) {
  return fmaChains<V16, 16>(iters);
}
__attribute__((target("avx2,fma"))) float fmaLoop256(long iters) {
  return fmaChains<V8, 12>(iters);
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
