//===- StructuredInputs.cpp - see StructuredInputs.h ----------------------===//

#include "StructuredInputs.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace deltaflow::bench {

namespace {
constexpr int64_t kHq = 32, kHkv = 8, kD = 128, kG = kHq / kHkv;

std::vector<float> unitVector(std::mt19937_64 &rng, int64_t lo, int64_t hi) {
  // A random unit vector supported on dims [lo, hi).
  std::normal_distribution<float> n(0, 1);
  std::vector<float> u(kD, 0.0f);
  double norm = 0;
  for (int64_t d = lo; d < hi; ++d)
    norm += double(u[d] = n(rng)) * u[d];
  for (float &x : u)
    x = float(x / std::sqrt(norm));
  return u;
}

float *rowOf(rt::Tensor &t, int64_t h, int64_t i) {
  return t.f32() + (h * t.shape()[2] + i) * kD;
}

void add(float *row, const std::vector<float> &u, float a) {
  for (int64_t d = 0; d < kD; ++d)
    row[d] += a * u[d];
}
} // namespace

StructuredInputs makeStructuredInputs(int64_t n, int64_t nq, uint64_t seed,
                                      int needles, int64_t avoidTail) {
  if (nq > n)
    throw std::invalid_argument("structured inputs need nq <= n");
  StructuredInputs in;
  in.q = rt::randomNormal({1, kHq, nq, kD}, seed * 3 + 1);
  in.k = rt::randomNormal({1, kHkv, n, kD}, seed * 3 + 2);
  in.v = rt::randomNormal({1, kHkv, n, kD}, seed * 3 + 3);
  std::mt19937_64 rng(seed);
  const int64_t first = n - nq; // position of query row 0

  // Neighbouring queries are alike: the noise in q is AR(1) along positions.
  // Its amplitude is 0.5: unrelated keys score N(0, 0.5^2) logits, so the
  // structure below carries most of the attention mass, as in trained models.
  const float rho = 0.99f, fresh = std::sqrt(1 - rho * rho);
  for (int64_t h = 0; h < kHq; ++h) {
    float *q0 = rowOf(in.q, h, 0);
    for (int64_t d = 0; d < kD; ++d)
      q0[d] *= 0.5f;
  }
  for (int64_t h = 0; h < kHq; ++h)
    for (int64_t i = 1; i < nq; ++i) {
      float *cur = rowOf(in.q, h, i);
      const float *prev = rowOf(in.q, h, i - 1);
      for (int64_t d = 0; d < kD; ++d)
        cur[d] = rho * prev[d] + 0.5f * fresh * cur[d];
    }

  // Positional code in dims [96, 128): 16 frequencies (local decay) and, in
  // dims [94, 96), one with period 1024 (slash lines). Directions in
  // [0, 94) carry sinks, vertical lines and needles.
  const float beta = 1.7f, slash = 3.5f;
  auto addPosition = [&](float *row, int64_t pos) {
    for (int m = 0; m < 16; ++m) {
      double w = 2 * M_PI / (16.0 * std::pow(2.0, m * 5.0 / 15.0));
      row[96 + 2 * m] += beta * float(std::cos(w * pos));
      row[97 + 2 * m] += beta * float(std::sin(w * pos));
    }
    double ws = 2 * M_PI / 1024.0;
    row[94] += slash * float(std::cos(ws * pos));
    row[95] += slash * float(std::sin(ws * pos));
  };
  for (int64_t h = 0; h < kHkv; ++h)
    for (int64_t j = 0; j < n; ++j)
      addPosition(rowOf(in.k, h, j), j);
  for (int64_t h = 0; h < kHq; ++h)
    for (int64_t i = 0; i < nq; ++i)
      addPosition(rowOf(in.q, h, i), first + i);

  // Sinks and vertical lines: shared directions every query leans to.
  std::vector<float> sinkDir = unitVector(rng, 0, 94);
  std::vector<float> vertDir = unitVector(rng, 0, 94);
  for (int64_t h = 0; h < kHq; ++h)
    for (int64_t i = 0; i < nq; ++i) {
      add(rowOf(in.q, h, i), sinkDir, 2.0f);
      add(rowOf(in.q, h, i), vertDir, 1.0f);
    }
  for (int64_t h = 0; h < kHkv; ++h) {
    for (int64_t j = 0; j < std::min<int64_t>(4, n); ++j)
      add(rowOf(in.k, h, j), sinkDir, 68.0f);
  }
  std::uniform_int_distribution<int64_t> anyKey(4, std::max<int64_t>(4, n - 1));
  for (int line = 0; line < 64; ++line) {
    int64_t j = anyKey(rng);
    for (int64_t h = 0; h < kHkv; ++h)
      add(rowOf(in.k, h, j), vertDir, 20.0f);
  }

  // Needles.
  int64_t lo = 128 + 1000, hi = n - nq - avoidTail - 1000;
  if (hi > lo && nq >= 128) {
    std::uniform_int_distribution<int64_t> depth(lo, hi - 1);
    std::uniform_int_distribution<int64_t> block(0, nq / 128 - 1);
    for (int t = 0; t < needles; ++t) {
      Needle nd;
      nd.kvHead = t % kHkv;
      nd.key = depth(rng);
      nd.rows = 128;
      nd.firstRow = block(rng) * 128;
      std::vector<float> dir = unitVector(rng, 0, 94);
      for (int64_t g = 0; g < kG; ++g)
        for (int64_t r = 0; r < nd.rows; ++r)
          add(rowOf(in.q, nd.kvHead * kG + g, nd.firstRow + r), dir, 3.0f);
      float *key = rowOf(in.k, nd.kvHead, nd.key);
      add(key, dir, 60.0f);
      float *val = rowOf(in.v, nd.kvHead, nd.key);
      for (int64_t d = 0; d < kD; ++d) // a distinct, recognisable value
        val[d] = (d % needles == t) ? 8.0f : -0.5f;
      in.needles.push_back(nd);
    }
  }
  return in;
}

} // namespace deltaflow::bench
