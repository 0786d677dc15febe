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
#include "deltaflow/Common/PtxAbi.h"
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

TEST(PtxLaunch, ChecksEveryShapeAgainstTheQuery) {
  auto plan = [&](std::vector<std::vector<int64_t>> s) {
    return errorOf([&] {
      rt::planAttentionLaunch(launch64(), gqa(true, true), s,
                              std::vector<uint64_t>(s.size(), 0x100));
    });
  };
  auto s = shapes(2, 30, 40, true);
  s[1][0] = s[2][0] = 1; // K/V of batch 1 under a batch-2 query
  EXPECT_EQ(plan(s), "tensor-core attention: key [1, 8, 40, 128] does not "
                     "match query [2, 32, 30, 128] (expected [2, 8, 40, 128])");
  s = shapes(1, 30, 40, true);
  s[3][3] = 64;
  EXPECT_EQ(plan(s), "tensor-core attention: output [1, 32, 30, 64] does not "
                     "match query [1, 32, 30, 128] (expected [1, 32, 30, 128])");
  s = shapes(1, 30, 40, true);
  s[4] = {1, 32, 30, 1};
  EXPECT_EQ(plan(s), "tensor-core attention: lse [1, 32, 30, 1] is not of rank 3");
  s = shapes(1, 30, 40, true);
  s[0][1] = 16;
  EXPECT_EQ(plan(s), "tensor-core attention: query [1, 16, 30, 128] is not "
                     "[B, 32, Nq, 128]");
}

TEST(PtxLaunch, SelectionPassesIndicesAfterValue) {
  // Sparse attention with a selection: q, k, v, indices, out, lse.
  manifest::SparsePattern sp;
  sp.sinks = 4;
  sp.window = 64;
  sp.chunk = 128;
  sp.slots = 50;
  auto s = shapes(2, 300, 1100, true);
  // ceil(300 / 128) = 3 chunks; one index set per KV head.
  s.insert(s.begin() + 3, {2, 8, 3, 50});
  std::vector<uint64_t> ptrs = {0x1000, 0x2000, 0x3000, 0x9000, 0x4000, 0x5000};
  rt::PtxLaunchPlan p =
      rt::planAttentionLaunch(launch64(), gqa(true, true), s, ptrs, &sp);
  EXPECT_EQ(p.grid, (std::array<unsigned, 3>{5, 32, 2}));
  ASSERT_EQ(p.params.size(), 6u * 5 + 2);
  EXPECT_EQ(std::vector<uint64_t>(p.params.begin() + 15, p.params.begin() + 20),
            (std::vector<uint64_t>{0x9000, 0x9000, 0, 2 * 8 * 3 * 50, 1}));
  EXPECT_EQ(p.params[20], 0x4000u); // then the output
  EXPECT_EQ(p.params[30], 300u);
  EXPECT_EQ(p.params[31], 1100u);

  auto plan = [&](std::vector<std::vector<int64_t>> shp) {
    return errorOf([&] {
      rt::planAttentionLaunch(launch64(), gqa(true, true), shp,
                              std::vector<uint64_t>(shp.size(), 0x100), &sp);
    });
  };
  auto bad = s;
  bad[3] = {2, 1, 2, 50}; // one chunk short
  EXPECT_EQ(plan(bad), "tensor-core attention: indices [2, 1, 2, 50] does not "
                       "match query [2, 32, 300, 128] (expected [2, 1, 3, 50])");
  bad[3] = {2, 4, 3, 50};
  EXPECT_EQ(plan(bad), "tensor-core attention: indices [2, 4, 3, 50] have 4 "
                       "head sets (1 or 8)");
  bad[3] = {2, 8, 3};
  EXPECT_EQ(plan(bad), "tensor-core attention: indices [2, 8, 3] is not of rank 4");
  bad.erase(bad.begin() + 3);
  EXPECT_NE(plan(bad).find("takes 6 buffers, got 5"), std::string::npos);
  // Window + sinks (no slots) keeps the dense ABI.
  sp.slots = 0;
  EXPECT_EQ(plan(shapes(2, 300, 1100, true)), "");
}

TEST(PtxLaunch, DeviceSelectionPlansSevenStepsOverScratch) {
  manifest::SelectParams sel;
  sel.policy = "token-select";
  sel.slots = 2048;
  sel.sinks = 128;
  sel.window = 512;
  sel.chunk = 512;
  manifest::PtxLaunch l{"select_k0", 1024, 33928, 512, 80, "token-select-v4"};
  // 700 queries at 1000 keys: C = 2 chunks, NB = 4 key blocks, NP = 32.
  std::vector<std::vector<int64_t>> s = {{1, 32, 700, 128}, {1, 8, 1000, 128},
                                         {1, 1, 2, 2048}};
  rt::PtxSelectPlan p = rt::planSelectLaunch(l, sel, s, {0x1000, 0x2000, 0x3000},
                                             0x100000);
  EXPECT_EQ(p.entries,
            (std::vector<std::string>{"_qbar", "_stats", "_merge", "_vote", "_topk_cand",
                                      "_topk_thresh", "_topk_write"}));
  ASSERT_EQ(p.steps.size(), 7u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{2, 32, 1}));
  EXPECT_EQ(p.steps[1].grid, (std::array<unsigned, 3>{4, 2, 1}));
  EXPECT_EQ(p.steps[2].grid, (std::array<unsigned, 3>{32, 2, 1}));
  EXPECT_EQ(p.steps[3].grid, (std::array<unsigned, 3>{4, 2, 1}));
  // top-k: slices of 8192 candidates (one at 1000 keys), then per chunk.
  EXPECT_EQ(p.steps[4].grid, (std::array<unsigned, 3>{1, 2, 1}));
  EXPECT_EQ(p.steps[5].grid, (std::array<unsigned, 3>{2, 1, 1}));
  EXPECT_EQ(p.steps[6].grid, (std::array<unsigned, 3>{1, 2, 1}));
  EXPECT_EQ(p.steps[0].threads, 1024u);
  EXPECT_EQ(p.steps[1].threads, 256u);
  EXPECT_EQ(p.steps[4].sharedBytes, 33928u);
  // Every step takes q, k, qbar, stats, hstats, vote, scores, hist,
  // indices, Nq, Nk ("token-select-v4").
  const std::vector<uint64_t> &a = p.steps[2].params;
  ASSERT_EQ(a.size(), 9u * 5 + 2);
  uint64_t qbar = 2 * 32 * 128 * 4, stats = 2 * 32 * 32 * 2 * 4,
           hstats = 2 * 32 * 2 * 4; // bytes, each a multiple of 256
  uint64_t vote = (2 * 1000 * 4 + 255) / 256 * 256, scores = 2 * 32 * 1000 * 4;
  EXPECT_EQ(a[10], 0x100000u);
  EXPECT_EQ(a[13], uint64_t(2 * 32 * 128));
  EXPECT_EQ(a[15], 0x100000u + qbar);
  EXPECT_EQ(a[20], 0x100000u + qbar + stats);
  EXPECT_EQ(a[25], 0x100000u + qbar + stats + hstats);
  EXPECT_EQ(a[28], uint64_t(2 * 1000));
  EXPECT_EQ(a[30], 0x100000u + qbar + stats + hstats + vote);
  EXPECT_EQ(a[33], uint64_t(2 * 32 * 1000));
  uint64_t hist = 2 * (65536 + 256 + 64) * 4;
  EXPECT_EQ(a[35], 0x100000u + qbar + stats + hstats + vote + scores);
  EXPECT_EQ(a[38], uint64_t(2 * (65536 + 256 + 64)));
  EXPECT_EQ(a[40], 0x3000u);
  EXPECT_EQ(a[45], 700u);
  EXPECT_EQ(a[46], 1000u);
  EXPECT_EQ(p.scratchBytes, qbar + stats + hstats + vote + scores + hist);

  auto plan = [&](std::vector<std::vector<int64_t>> shp) {
    return errorOf([&] {
      rt::planSelectLaunch(l, sel, shp, std::vector<uint64_t>(shp.size(), 1), 0);
    });
  };
  auto bad = s;
  bad[2] = {1, 1, 1, 2048};
  EXPECT_EQ(plan(bad), "device selection: indices [1, 1, 1, 2048] (expected "
                       "[1, 1, 2, 2048])");
  bad = s;
  bad[1] = {1, 5, 1000, 128};
  EXPECT_EQ(plan(bad), "device selection: key [1, 5, 1000, 128] does not match "
                       "query [1, 32, 700, 128]");
  bad = s;
  bad[1] = {1, 8, (int64_t(1) << 25) + 1, 128};
  EXPECT_EQ(plan(bad), "device selection: 33554433 keys (its top-k takes up to 33554432)");
  bad = s;
  bad[0] = {1, 32, 700};
  EXPECT_EQ(plan(bad), "device selection: query [1, 32, 700] is not of rank 4");
  // No queries: nothing to launch.
  EXPECT_TRUE(rt::planSelectLaunch(l, sel, {{1, 32, 0, 128}, {1, 8, 10, 128}, {1, 1, 0, 2048}},
                                   {1, 2, 3}, 0)
                  .steps.empty());
}

TEST(PtxLaunch, DecodePlansSplitThenMergeOverScratch) {
  // "decode-v1": q, k, v, out, lse, partO, partL as descriptors, then Nq,
  // Nk and the keys per split; split (S, Nq Hkv, B), merge (Nq, Hq, B).
  manifest::PtxLaunch l{"attention_k0_decode", 256, 8320, 1, 80, "decode-v1"};
  std::vector<uint64_t> ptrs = {0x1000, 0x2000, 0x3000, 0x4000, 0x5000};
  // 128K keys, one row, 8 KV heads: 128 splits of 1024 keys (1024 CTAs).
  rt::PtxSelectPlan p =
      rt::planDecodeLaunch(l, gqa(true, true), shapes(1, 1, 131072, true), ptrs, 0x100000);
  EXPECT_EQ(p.entries, (std::vector<std::string>{"_split", "_merge"}));
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{128, 8, 1}));
  EXPECT_EQ(p.steps[1].grid, (std::array<unsigned, 3>{1, 32, 1}));
  EXPECT_EQ(p.steps[0].threads, 128u);
  EXPECT_EQ(p.steps[1].threads, 256u);
  EXPECT_EQ(p.steps[0].sharedBytes, 8320u);
  const std::vector<uint64_t> &a = p.steps[1].params;
  ASSERT_EQ(a.size(), 7u * 5 + 3);
  EXPECT_EQ(a, p.steps[0].params);
  EXPECT_EQ(a[0], 0x1000u);
  EXPECT_EQ(a[20], 0x5000u);           // lse
  EXPECT_EQ(a[23], uint64_t(32));      // its elements: B Hq Nq
  uint64_t oBytes = 32 * 128 * 128 * 4; // partO [1, 32, 1, 128, 128] f32
  EXPECT_EQ(a[25], 0x100000u);
  EXPECT_EQ(a[28], uint64_t(32 * 128 * 128));
  EXPECT_EQ(a[30], 0x100000u + oBytes);
  EXPECT_EQ(a[33], uint64_t(32 * 128));
  EXPECT_EQ(a[35], 1u);
  EXPECT_EQ(a[36], 131072u);
  EXPECT_EQ(a[37], 1024u);
  EXPECT_EQ(p.scratchBytes, oBytes + 32 * 128 * 4);

  // Short contexts: at least 256 keys per split; off the split size the
  // last split is partial. Batch 2, 3 rows, no LSE: 4 fewer parameters.
  p = rt::planDecodeLaunch(l, gqa(false, false), shapes(2, 3, 1000, false),
                           {1, 2, 3, 4}, 0);
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{4, 24, 2}));
  EXPECT_EQ(p.steps[1].grid, (std::array<unsigned, 3>{3, 32, 2}));
  ASSERT_EQ(p.steps[0].params.size(), 6u * 5 + 3);
  EXPECT_EQ(p.steps[0].params.back(), 256u);
  EXPECT_EQ(p.scratchBytes, uint64_t(2 * 32 * 3 * 4 * 128 * 4 + 2 * 32 * 3 * 4 * 4));

  // The tile's shape checks hold, in one line; no rows: nothing to launch.
  auto bad = shapes(1, 1, 1000, true);
  bad[2] = {1, 8, 999, 128};
  EXPECT_EQ(errorOf([&] { rt::planDecodeLaunch(l, gqa(true, true), bad, ptrs, 0); }),
            "key and value lengths differ (1000 vs 999)");
  EXPECT_TRUE(rt::planDecodeLaunch(l, gqa(false, true), shapes(1, 0, 10, true), ptrs, 0)
                  .steps.empty());
}

TEST(PtxLaunch, DenseRowsPlanSplitsKeysAndMergesRows) {
  // "dense-rows-v1": q, k, v, rows, partO, partL, then Nq, Nk, keys per
  // split, rows after; split (row tiles, Hkv, S B) over the G query heads'
  // used rows of each KV head, merge (R, Hq, B) over the reserved rows.
  manifest::PtxLaunch l{"attention_k2", 128, 81920, 64, 80, "dense-rows-v1"};
  std::vector<uint64_t> ptrs = {0x1000, 0x2000, 0x3000, 0x4000};
  // 512 queries, stride 64, a call with no tail: R = 8 strided + 63 + 128
  // reserved = 199 rows; 4 query heads x 8 used rows fill one 64-row tile
  // per KV head: 8 CTAs per split, so 128 splits of 1024 keys.
  auto sh = [](int64_t b, int64_t nq, int64_t nk, int64_t rows) {
    return std::vector<std::vector<int64_t>>{
        {b, 32, nq, 128}, {b, 8, nk, 128}, {b, 8, nk, 128}, {b, 32, rows, 128}};
  };
  rt::PtxSelectPlan p = rt::planDenseRowsLaunch(l, gqa(true, false), 64,
                                                sh(1, 512, 131072, 199), ptrs, 0x100000,
                                                1000000);
  EXPECT_EQ(p.entries, (std::vector<std::string>{"_split", "_merge"}));
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{1, 8, 128}));
  EXPECT_EQ(p.steps[1].grid, (std::array<unsigned, 3>{199, 32, 1}));
  EXPECT_EQ(p.steps[0].threads, 128u);
  EXPECT_EQ(p.steps[1].threads, 256u);
  EXPECT_EQ(p.steps[0].sharedBytes, 81920u);
  EXPECT_EQ(p.steps[1].sharedBytes, unsigned(ptx_abi::mergeSharedBytes(128)));
  const std::vector<uint64_t> &a = p.steps[0].params;
  ASSERT_EQ(a.size(), 6u * 5 + 4);
  EXPECT_EQ(a, p.steps[1].params);
  EXPECT_EQ(a[15], 0x4000u);                 // rows
  EXPECT_EQ(a[18], uint64_t(32 * 199 * 128)); // its elements
  uint64_t partRows = 32 * 199 * 128;
  EXPECT_EQ(a[20], 0x100000u);
  EXPECT_EQ(a[23], partRows * 128);
  EXPECT_EQ(a[25], 0x100000u + partRows * 128 * 4);
  EXPECT_EQ(a[28], partRows);
  EXPECT_EQ((std::vector<uint64_t>(a.end() - 4, a.end())),
            (std::vector<uint64_t>{512, 131072, 1024, 1000000}));
  EXPECT_EQ(p.scratchBytes, partRows * 128 * 4 + (partRows * 4 + 255) / 256 * 256);

  // The call that ends the prompt: 512 mod 64 + 128 tail rows, less the 7
  // that follow: 129 used rows x 4 heads = 9 tiles per KV head, 72 CTAs per
  // split, so 14 splits of 9472 keys.
  p = rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(1, 512, 131072, 199), ptrs, 0, 7);
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{9, 8, 14}));
  EXPECT_EQ(p.steps[0].params[32], 9472u);
  // A short context: splits of at least 256 keys; batch 2 in grid z (37
  // queries: 1 strided row and all 37 as the tail).
  p = rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(2, 37, 300, 192), ptrs, 0, 0);
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{3, 8, 4}));
  EXPECT_EQ(p.steps[0].params[32], 256u);
  // No queries: the merge alone (it writes the reserved rows' zeros).
  p = rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(1, 0, 300, 191), ptrs, 0, 0);
  EXPECT_EQ(p.entries, (std::vector<std::string>{"_merge"}));
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{191, 32, 1}));

  // Bad shapes are one line; so is a causal call with more queries than keys.
  EXPECT_EQ(errorOf([&] {
              rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(1, 512, 4096, 200), ptrs, 0, 0);
            }),
            "tensor-core dense rows: rows [1, 32, 200, 128] (expected [1, 32, 199, 128])");
  EXPECT_EQ(errorOf([&] {
              rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(1, 512, 100, 199), ptrs, 0, 0);
            }),
            "causal attention without an offset takes the queries as the last Nq of the "
            "Nk keys, so Nq <= Nk; got Nq = 512, Nk = 100");
  EXPECT_EQ(errorOf([&] {
              rt::planDenseRowsLaunch(l, gqa(true, false), 64, sh(1, 4, 10, 195), ptrs, 0, -1);
            }),
            "tensor-core dense rows: stride 64, rows per block 64 or rows after -1 out of range");
}

TEST(PtxLaunch, DeltaCorrectPlanCoversTheRows) {
  // "delta-correct-v1": sparse, rows, out, then Nq and rows after; grid
  // (ceil(Nq / rows per block), Hq, B): 8 rows of 16 lanes for D = 128.
  manifest::PtxLaunch l{"attention_k3", 128, 0, 8, 80, "delta-correct-v1"};
  std::vector<std::vector<int64_t>> sh = {{2, 32, 512, 128}, {2, 32, 199, 128}, {2, 32, 512, 128}};
  rt::PtxSelectPlan p = rt::planDeltaCorrectLaunch(l, 64, sh, {0x1000, 0x2000, 0x3000}, 5);
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.entries, (std::vector<std::string>{""}));
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{64, 32, 2}));
  EXPECT_EQ(p.steps[0].threads, 128u);
  EXPECT_EQ(p.scratchBytes, 0u);
  const std::vector<uint64_t> &a = p.steps[0].params;
  ASSERT_EQ(a.size(), 3u * 5 + 2);
  EXPECT_EQ(a[10], 0x3000u);
  EXPECT_EQ(a[13], uint64_t(2 * 32 * 512 * 128));
  EXPECT_EQ(a[15], 512u);
  EXPECT_EQ(a[16], 5u);
  // Rows of another stride's layout, or an output of another shape: one line.
  sh[1][2] = 198;
  EXPECT_EQ(errorOf([&] { rt::planDeltaCorrectLaunch(l, 64, sh, {1, 2, 3}, 0); }),
            "tensor-core delta correction: dense rows [2, 32, 198, 128] (expected [2, 32, 199, 128])");
  sh[1][2] = 199;
  sh[2][3] = 64;
  EXPECT_EQ(errorOf([&] { rt::planDeltaCorrectLaunch(l, 64, sh, {1, 2, 3}, 0); }),
            "tensor-core delta correction: output [2, 32, 512, 64] (expected [2, 32, 512, 128])");
  // No rows: nothing to launch.
  EXPECT_TRUE(rt::planDeltaCorrectLaunch(l, 64, {{1, 32, 0, 128}, {1, 32, 191, 128}, {1, 32, 0, 128}},
                                         {1, 2, 3}, 0)
                  .steps.empty());
}

TEST(PtxLaunch, GemmPlanTilesTheOutput) {
  // "gemm-v1": a, weight, c, then M; grid (N / kGemmBlockN, ceil(M / rows
  // per block)), one step, no scratch. M = 1 x 1000 rows (A [1, M, K]).
  manifest::PtxLaunch l{"main_k0", 256, 40960, 128, 80, "gemm-v1"};
  std::vector<std::vector<int64_t>> sh = {{1, 1000, 4096}, {14336, 4096}, {1, 1000, 14336}};
  rt::PtxSelectPlan p = rt::planGemmLaunch(l, sh, {0x1000, 0x2000, 0x3000});
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.entries, (std::vector<std::string>{""}));
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{14336 / 128, 8, 1}));
  EXPECT_EQ(p.steps[0].threads, 256u);
  EXPECT_EQ(p.steps[0].sharedBytes, 40960u);
  EXPECT_EQ(p.scratchBytes, 0u);
  const std::vector<uint64_t> &a = p.steps[0].params;
  ASSERT_EQ(a.size(), 3u * 5 + 1);
  EXPECT_EQ(a[0], 0x1000u);
  EXPECT_EQ(a[3], uint64_t(1000 * 4096));
  EXPECT_EQ(a[5], 0x2000u);
  EXPECT_EQ(a[8], uint64_t(14336 * 4096));
  EXPECT_EQ(a[10], 0x3000u);
  EXPECT_EQ(a[15], 1000u);
  // A weight of another size, or rows that differ: one line each.
  sh[1] = {14336, 4095};
  EXPECT_EQ(errorOf([&] { rt::planGemmLaunch(l, sh, {1, 2, 3}); }),
            "tensor-core GEMM: weight [14336, 4095] is not 14336 x 4096 with columns a "
            "multiple of 128 and depth a multiple of 32");
  sh[1] = {14336, 4096};
  sh[2][1] = 999;
  EXPECT_EQ(errorOf([&] { rt::planGemmLaunch(l, sh, {1, 2, 3}); }),
            "tensor-core GEMM: a [1, 1000, 4096] and c [1, 999, 14336] differ in their rows");
  // No rows: nothing to launch.
  EXPECT_TRUE(rt::planGemmLaunch(l, {{1, 0, 4096}, {14336, 4096}, {1, 0, 14336}}, {1, 2, 3})
                  .steps.empty());
}

TEST(PtxLaunch, GemvPlanGivesAWarpFourColumns) {
  // "gemv-v2": the same parameters as the GEMM's; grid (ceil(N / 32), 1):
  // 8 warps of 4 columns, every row in each CTA. Any column count; depth
  // a multiple of 8.
  manifest::PtxLaunch l{"main_k0_gemv", 256, 0, 4, 80, "gemv-v2"};
  std::vector<std::vector<int64_t>> sh = {{1, 3, 4096}, {1001, 4096}, {1, 3, 1001}};
  rt::PtxSelectPlan p = rt::planGemmLaunch(l, sh, {0x1000, 0x2000, 0x3000});
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].grid, (std::array<unsigned, 3>{32, 1, 1})); // 1001 / 32 rounded up
  EXPECT_EQ(p.steps[0].threads, 256u);
  EXPECT_EQ(p.steps[0].sharedBytes, 0u);
  const std::vector<uint64_t> &a = p.steps[0].params;
  ASSERT_EQ(a.size(), 3u * 5 + 1);
  EXPECT_EQ(a[8], uint64_t(1001 * 4096));
  EXPECT_EQ(a[15], 3u);
  sh = {{1, 1, 4100}, {1001, 4100}, {1, 1, 1001}};
  EXPECT_EQ(errorOf([&] { rt::planGemmLaunch(l, sh, {1, 2, 3}); }),
            "GEMV: weight [1001, 4100] is not 1001 x 4100 with columns a multiple of 1 and "
            "depth a multiple of 8");
  EXPECT_TRUE(rt::planGemmLaunch(l, {{1, 0, 4096}, {1001, 4096}, {1, 0, 1001}}, {1, 2, 3})
                  .steps.empty());
}

namespace {
// Stand-ins for the module's Halide runtime: the checks below must refuse
// before any of them (or the driver) is called.
int failCopy(void *, halide_buffer_t *, const void *) { return -1; }
const void *noInterface() { return nullptr; }
int noContext(void *, void **, bool) { return -1; }
int noRelease(void *) { return 0; }
} // namespace

TEST(PtxLaunch, RefusesStridedViewsAndBadShapesBeforeTheDevice) {
  rt::HalideCudaRuntime h{failCopy, failCopy, noInterface, noContext, noRelease};
  const char *ptx = ".version 7.8\n";
  rt::PtxKernel kernel(launch64(), ptx, h, "m.so: kernel 'attention_k0' (a.mlir:3:8)");
  manifest::KernelSpec spec;
  spec.kind = manifest::KernelKind::Attention;
  spec.inputs = {"q", "k", "v"};
  spec.outputs = {"out"};
  spec.attention = gqa(true, false);
  auto tensor = [](std::vector<int64_t> shape) {
    return rt::Tensor(std::move(shape), manifest::DType::BFloat16);
  };
  // K and V as KV-cache views (capacity 64, 40 rows in use) pass the
  // checks: they are packed on the device (here the missing driver stops
  // the launch). A strided output, or a view with gaps inside a head, is
  // refused first.
  rt::Tensor cacheK = tensor({1, 8, 64, 128}), cacheV = tensor({1, 8, 64, 128});
  std::vector<rt::Tensor> ts = {tensor({1, 32, 40, 128}), cacheK.narrow(2, 40),
                                cacheV.narrow(2, 40), tensor({1, 32, 40, 128})};
  // (With a driver present, the stand-in runtime fails to place q instead.)
  std::string accepted = errorOf([&] { kernel.launch(spec, ts); });
  EXPECT_TRUE(accepted == "m.so: kernel 'attention_k0' (a.mlir:3:8): the CUDA driver "
                          "(libcuda.so.1) is missing or lacks the launch API" ||
              accepted.rfind("m.so: kernel 'attention_k0' (a.mlir:3:8): cannot place q", 0) == 0)
      << accepted;
  rt::Tensor wide = tensor({1, 32, 64, 128});
  ts = {tensor({1, 32, 40, 128}), tensor({1, 8, 40, 128}), tensor({1, 8, 40, 128}),
        wide.narrow(2, 40)};
  EXPECT_EQ(errorOf([&] { kernel.launch(spec, ts); }),
            "m.so: kernel 'attention_k0' (a.mlir:3:8): output 'out' is a strided "
            "view; the tensor-core kernel writes dense tensors only");
  rt::Tensor k256 = tensor({1, 8, 40, 256});
  ts = {tensor({1, 32, 40, 128}), k256.narrow(3, 128), tensor({1, 8, 40, 128}),
        tensor({1, 32, 40, 128})};
  std::string e = errorOf([&] { kernel.launch(spec, ts); });
  EXPECT_EQ(e.rfind("m.so: kernel 'attention_k0' (a.mlir:3:8): 'k' is a view "
                    "[1, 8, 40, 128] with strides [81920, 10240, 256, 1]", 0), 0u) << e;
  ts = {tensor({2, 32, 40, 128}), tensor({1, 8, 40, 128}),
        tensor({1, 8, 40, 128}), tensor({2, 32, 40, 128})};
  EXPECT_EQ(errorOf([&] { kernel.launch(spec, ts); }),
            "m.so: kernel 'attention_k0' (a.mlir:3:8): tensor-core attention: "
            "key [1, 8, 40, 128] does not match query [2, 32, 40, 128] "
            "(expected [2, 8, 40, 128])");
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

// A KV-cache view [B, H, N, D] of a cache with capacity C rows per head: one
// 2-D copy packs it (B * H rows of N * D elements, C * D apart); any other
// gap is refused in one line.
TEST(PtxLaunch, PackPlanOfAKvCacheView) {
  const int64_t B = 2, H = 8, N = 300, D = 128, C = 1024;
  rt::PtxPackPlan p = rt::planPack({B, H, N, D}, {H * C * D, C * D, D, 1}, 2);
  EXPECT_EQ(p.widthBytes, uint64_t(N * D * 2));
  EXPECT_EQ(p.height, uint64_t(B * H));
  EXPECT_EQ(p.srcPitchBytes, uint64_t(C * D * 2));
  // A full cache (N = C) is a plain dense copy.
  EXPECT_EQ(rt::planPack({1, H, C, D}, {H * C * D, C * D, D, 1}, 4).srcPitchBytes,
            uint64_t(C * D * 4));
  auto refused = [](std::vector<int64_t> shape, std::vector<int64_t> strides) {
    try {
      rt::planPack(shape, strides, 2);
    } catch (const std::exception &e) {
      std::string m = e.what();
      return m.find('\n') == std::string::npos &&
             m.find("only gaps lie between heads") != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused({1, H, N, D}, {H * C * D, C * D, 2 * D, 1}));   // rows apart
  EXPECT_TRUE(refused({1, H, N, D}, {H * C * D, C * D, D, 2}));       // columns apart
  EXPECT_TRUE(refused({1, H, N, D}, {H * C * D, N * D - 1, D, 1}));   // heads overlap
  EXPECT_TRUE(refused({2, H, N, D}, {H * C * D + 1, C * D, D, 1}));   // batches apart
  EXPECT_THROW(rt::planPack({H, N, D}, {N * D, D, 1}, 2), std::runtime_error);
}
