//===- PtxLaunchTest.cpp - tensor-core launches without a driver ----------===//
//
// The parameters the runtime passes to a PTX attention kernel (the
// "attention-v1" ABI of compiler/include/deltaflow/Compiler/TensorCore.h),
// its grid and its refusals, checked on plain data: CI has no GPU. The
// kernels themselves are checked on the device (bench/gpu/tensorcore.py).
//
//===----------------------------------------------------------------------===//

#include "ErrorOf.h"

#include "PtxLauncher.h" // runtime/lib: the launcher's plan, not installed
#include "deltaflow/Runtime/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace deltaflow;

namespace {

manifest::PtxLaunch launch64() {
  return manifest::PtxLaunch{"attention_k0", 128, 81920, 64, 80};
}

manifest::AttentionParams gqa(bool causal, bool lse) {
  manifest::AttentionParams a;
  a.hq = 32;
  a.hkv = 8;
  a.d = a.dv = 128;
  a.scale = 1 / std::sqrt(128.0);
  a.causal = causal;
  a.withLse = lse;
  a.dtype = a.kvDtype = manifest::DType::BFloat16;
  return a;
}

std::vector<std::vector<int64_t>> shapes(int64_t b, int64_t nq, int64_t nk,
                                         bool lse) {
  std::vector<std::vector<int64_t>> s = {{b, 32, nq, 128},
                                         {b, 8, nk, 128},
                                         {b, 8, nk, 128},
                                         {b, 32, nq, 128}};
  if (lse)
    s.push_back({b, 32, nq});
  return s;
}

} // namespace

TEST(PtxLaunch, PacksMemrefDescriptorsThenLengths) {
  std::vector<uint64_t> ptrs = {0x1000, 0x2000, 0x3000, 0x4000, 0x5000};
  rt::PtxLaunchPlan p =
      rt::planAttentionLaunch(launch64(), gqa(true, true), shapes(2, 300, 1100, true), ptrs);
  // Grid: ceil(300 / 64) query tiles, one per head, one per batch.
  EXPECT_EQ(p.grid, (std::array<unsigned, 3>{5, 32, 2}));
  EXPECT_EQ(p.threads, 128u);
  EXPECT_EQ(p.sharedBytes, 81920u);
  std::vector<uint64_t> want;
  const uint64_t sizes[] = {2 * 32 * 300 * 128, 2 * 8 * 1100 * 128,
                            2 * 8 * 1100 * 128, 2 * 32 * 300 * 128, 2 * 32 * 300};
  for (int i = 0; i < 5; ++i) // {allocated, aligned, offset, size, stride}
    want.insert(want.end(), {ptrs[size_t(i)], ptrs[size_t(i)], 0, sizes[i], 1});
  want.insert(want.end(), {300, 1100});
  EXPECT_EQ(p.params, want);
}

TEST(PtxLaunch, WithoutLseFourBuffers) {
  rt::PtxLaunchPlan p = rt::planAttentionLaunch(
      launch64(), gqa(false, false), shapes(1, 1, 7, false), {1, 2, 3, 4});
  EXPECT_EQ(p.grid, (std::array<unsigned, 3>{1, 32, 1}));
  EXPECT_EQ(p.params.size(), 4u * 5 + 2);
  EXPECT_EQ(p.params[20], 1u);
  EXPECT_EQ(p.params[21], 7u);
}

TEST(PtxLaunch, NoQueriesLaunchesNothing) {
  rt::PtxLaunchPlan p = rt::planAttentionLaunch(
      launch64(), gqa(true, false), shapes(1, 0, 5, false), {1, 2, 3, 4});
  EXPECT_EQ(p.grid[0], 0u);
}

TEST(PtxLaunch, RefusesShapesInOneLine) {
  auto plan = [&](manifest::AttentionParams a,
                  std::vector<std::vector<int64_t>> s) {
    return errorOf([&] {
      rt::planAttentionLaunch(launch64(), a, s,
                              std::vector<uint64_t>(s.size(), 0x100));
    });
  };
  EXPECT_EQ(plan(gqa(true, false), shapes(1, 10, 0, false)),
            "attention needs at least one key (Nk = 0)");
  EXPECT_NE(plan(gqa(true, false), shapes(1, 20, 10, false))
                .find("Nq <= Nk; got Nq = 20, Nk = 10"),
            std::string::npos);
  // With a static offset the queries are placed explicitly: Nq > Nk is fine.
  manifest::AttentionParams off = gqa(true, false);
  off.offset = 0;
  EXPECT_EQ(plan(off, shapes(1, 20, 10, false)), "");
  auto kv = shapes(1, 4, 10, false);
  kv[2][2] = 9;
  EXPECT_EQ(plan(gqa(false, false), kv), "key and value lengths differ (10 vs 9)");
  EXPECT_NE(plan(gqa(false, true), shapes(1, 4, 10, false)).find("takes 5 buffers"),
            std::string::npos);
  EXPECT_NE(plan(gqa(false, false), shapes(70000, 4, 10, false))
                .find("exceeds the CUDA grid limits"),
            std::string::npos);
}

TEST(BFloat16, RoundsToNearestEven) {
  auto bits = [](float f) { return rt::floatToBFloat16(f); };
  EXPECT_EQ(bits(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even.
  EXPECT_EQ(bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(bits(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(bits(-0.0f), 0x8000);
  EXPECT_EQ(bits(INFINITY), 0x7f80);
  EXPECT_EQ(bits(-INFINITY), 0xff80);
  EXPECT_EQ(bits(std::numeric_limits<float>::max()), 0x7f80); // overflows
  uint16_t nan = bits(std::nanf(""));
  EXPECT_TRUE(std::isnan(rt::bfloat16ToFloat(nan)));
  // A NaN whose payload sits only in the dropped bits stays a NaN.
  uint32_t lowNan = 0x7f800001;
  float f;
  std::memcpy(&f, &lowNan, 4);
  EXPECT_TRUE(std::isnan(rt::bfloat16ToFloat(bits(f))));
  // Subnormals round like any other value.
  EXPECT_EQ(bits(std::ldexp(1.0f, -133)), 0x0001);
}

TEST(BFloat16, TensorConversionsRoundTrip) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  rt::Tensor t({3, 5, 7});
  for (int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = dist(rng);
  rt::Tensor b = t.to(manifest::DType::BFloat16);
  ASSERT_EQ(b.dtype(), manifest::DType::BFloat16);
  EXPECT_EQ(b.bytes(), size_t(t.numel()) * 2);
  rt::Tensor back = b.toFloat32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float x = t.f32()[i], y = back.f32()[i];
    EXPECT_LE(std::abs(x - y), std::abs(x) * std::ldexp(1.0f, -8)) << i;
    // Widening then narrowing again is exact.
    EXPECT_EQ(rt::floatToBFloat16(y),
              reinterpret_cast<const uint16_t *>(b.raw())[i]);
  }
  EXPECT_EQ(errorOf([&] { b.to(manifest::DType::Int32); }),
            "cannot convert bfloat16 to int32");
}
