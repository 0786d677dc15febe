//===- SparseKernelTest.cpp - sparse kernels vs float64 references --------===//
//
// fixtures/sparse_ops.mlir compiles each sparse kernel on its own: the three
// selections, sparse attention over given indices (shared and per KV head),
// window + sinks, the strided dense rows and the Delta combination. Each is
// checked against SparseReference.h. Selections are checked as top-k sets:
// the right size, ascending, inside the candidates, and every kept score at
// least every dropped one (up to float32 rounding of the scores).
//
//===----------------------------------------------------------------------===//

#include "SparseReference.h"

#include "deltaflow/Runtime/Executor.h"

#include <gtest/gtest.h>

using namespace deltaflow;
using test::Geometry;

namespace {

constexpr int64_t kHq = 8, kHkv = 2, kD = 64;

std::shared_ptr<rt::Module> sparseModule() {
  static std::shared_ptr<rt::Module> m =
      rt::Module::load(DELTAFLOW_FIXTURE_DIR "/sparse_ops.so");
  return m;
}

// (Nq, Nk): decode, no candidates yet, fewer candidates than the budget
// (exact fallback), chunks cut short, Nq != Nk, lengths off every tile.
const std::pair<int64_t, int64_t> kShapes[] = {
    {1, 100}, {1, 1000}, {32, 32}, {7, 50},   {45, 300},
    {64, 1000}, {100, 700}, {33, 129}, {3, 2000}};

struct Inputs {
  rt::Tensor q, k, v;
};
Inputs makeInputs(int64_t nq, int64_t nk, uint64_t seed) {
  return {test::randomTensor({1, kHq, nq, kD}, seed),
          test::randomTensor({1, kHkv, nk, kD}, seed + 1),
          test::randomTensor({1, kHkv, nk, kD}, seed + 2)};
}

/// Slots of (hs, c) of a [1, Hs, C, S] index tensor.
std::vector<int32_t> slotsOf(const rt::Tensor &idx, int64_t hs, int64_t c) {
  const auto &s = idx.shape();
  const int32_t *p = idx.i32() + (hs * s[2] + c) * s[3];
  return {p, p + s[3]};
}

/// Checks that `sel` holds the `want` best of `score` (candidate j is key
/// sinks + j) in ascending order, then -1s.
void expectTopK(const std::vector<int32_t> &sel, const std::vector<double> &score,
                int64_t sinks, int64_t want, const std::string &where) {
  int64_t n = int64_t(score.size());
  int64_t count = 0;
  std::vector<bool> kept(n, false);
  for (size_t t = 0; t < sel.size(); ++t) {
    if (sel[t] == -1) {
      for (size_t u = t; u < sel.size(); ++u)
        ASSERT_EQ(sel[u], -1) << where << ": a -1 before a selected index";
      break;
    }
    ASSERT_GE(sel[t], sinks) << where;
    ASSERT_LT(sel[t], sinks + n) << where << ": index past the candidates";
    if (t > 0) {
      ASSERT_GT(sel[t], sel[t - 1]) << where << ": not strictly ascending";
    }
    kept[sel[t] - sinks] = true;
    ++count;
  }
  ASSERT_EQ(count, std::min(want, n)) << where;
  double minKept = 1e300, maxDropped = -1e300;
  for (int64_t j = 0; j < n; ++j) {
    if (kept[j])
      minKept = std::min(minKept, score[j]);
    else
      maxDropped = std::max(maxDropped, score[j]);
  }
  if (count > 0 && count < n) {
    EXPECT_GE(minKept, maxDropped - 1e-5 * (1 + std::abs(maxDropped)))
        << where << ": a dropped candidate outscores a kept one";
  }
}

/// The runtime's dense fallback: a context of at most sinks + slots +
/// window keys is all in the pattern, and dense attention runs instead.
bool fitsPattern(int64_t nk, int64_t sinks, int64_t slots, int64_t window) {
  return nk <= sinks + slots + window;
}

/// What a sparse kernel must return: the reference over its key set, or
/// exact causal attention where the dense fallback applies.
test::RefResult expectedSparse(const Inputs &in, const rt::Tensor *idx,
                               const Geometry &g, int64_t slots, double scale) {
  return fitsPattern(g.nk, g.sinks, slots, g.window)
             ? test::referenceCausal(in.q, in.k, in.v, g, scale)
             : test::referenceSparse(in.q, in.k, in.v, idx, g, scale);
}

class SparseKernel : public ::testing::TestWithParam<int> {
protected:
  int64_t nq() const { return kShapes[GetParam()].first; }
  int64_t nk() const { return kShapes[GetParam()].second; }
  uint64_t seed() const { return 1000 + uint64_t(GetParam()) * 17; }
  Geometry geometry(int64_t sinks = 8, int64_t window = 32,
                    int64_t chunk = 32) const {
    Geometry g;
    g.nq = nq(), g.nk = nk(), g.sinks = sinks, g.window = window, g.chunk = chunk;
    return g;
  }
  std::string where(const char *what, int64_t hs, int64_t c) const {
    return std::string(what) + " Nq=" + std::to_string(nq()) +
           " Nk=" + std::to_string(nk()) + " head set " + std::to_string(hs) +
           " chunk " + std::to_string(c);
  }
  rt::Executor exec{sparseModule(), 2};
  /// Runs the sparse kernel itself: its dense fallback off, so small
  /// contexts test the sparse code too.
  std::map<std::string, rt::Tensor>
  runSparse(const std::string &entry, const std::map<std::string, rt::Tensor> &in) {
    rt::RunOptions opts;
    opts.denseFallback = false;
    return exec.run(entry, in, opts);
  }
};

TEST_P(SparseKernel, TokenSelectIsTheTopKOfTheSoftVote) {
  Inputs in = makeInputs(nq(), nk(), seed());
  rt::Tensor idx = exec.run("select_token", {{"q", in.q}, {"k", in.k}}).at("idx");
  Geometry g = geometry();
  ASSERT_EQ(idx.shape(), (std::vector<int64_t>{1, 1, g.chunks(), 48}));
  for (int64_t c = 0; c < g.chunks(); ++c)
    expectTopK(slotsOf(idx, 0, c), test::tokenVote(in.q, in.k, 0, g, c),
               g.sinks, 48, where("token-select", 0, c));
}

TEST_P(SparseKernel, AdaptiveReachesMassPWithTheSmallestClampedSet) {
  Inputs in = makeInputs(nq(), nk(), seed());
  rt::Tensor idx =
      exec.run("select_adaptive", {{"q", in.q}, {"k", in.k}}).at("idx");
  Geometry g = geometry();
  ASSERT_EQ(idx.shape(), (std::vector<int64_t>{1, kHkv, g.chunks(), 64}));
  for (int64_t hk = 0; hk < kHkv; ++hk)
    for (int64_t c = 0; c < g.chunks(); ++c) {
      double kept = 0;
      std::vector<double> mass = test::groupMass(in.q, in.k, 0, hk, g, c, kept);
      std::vector<double> sorted = mass;
      std::sort(sorted.rbegin(), sorted.rend());
      // Smallest prefix that brings the kept mass to p = 0.9; accept either
      // side of a boundary that float32 rounding can move.
      double target = 0.9 - kept;
      int64_t lo = 0, hi = 0;
      double acc = 0;
      if (target > 1e-5) {
        for (double m : sorted) {
          acc += m;
          ++hi;
          if (acc < target - 1e-5)
            lo = hi;
          if (acc >= target + 1e-5)
            break;
        }
        lo = std::min<int64_t>(lo + 1, hi);
      } else if (target > -1e-5) {
        hi = 1; // on the boundary: 0 or 1
      }
      int64_t n = int64_t(mass.size());
      auto clampBudget = [&](int64_t x) {
        return std::min(std::clamp<int64_t>(x, 8, 64), n);
      };
      std::vector<int32_t> sel = slotsOf(idx, hk, c);
      int64_t count = std::count_if(sel.begin(), sel.end(),
                                    [](int32_t x) { return x >= 0; });
      EXPECT_GE(count, clampBudget(lo)) << where("adaptive", hk, c);
      EXPECT_LE(count, clampBudget(hi)) << where("adaptive", hk, c);
      expectTopK(sel, mass, g.sinks, count, where("adaptive", hk, c));
    }
}

TEST_P(SparseKernel, BlockTopKKeepsTheBestPagesWhole) {
  Inputs in = makeInputs(nq(), nk(), seed());
  rt::Tensor idx = exec.run("select_block", {{"q", in.q}, {"k", in.k}}).at("idx");
  Geometry g = geometry();
  const int64_t page = 8, pages = 48 / page;
  ASSERT_EQ(idx.shape(), (std::vector<int64_t>{1, kHkv, g.chunks(), 48}));
  for (int64_t hk = 0; hk < kHkv; ++hk)
    for (int64_t c = 0; c < g.chunks(); ++c) {
      std::vector<int32_t> sel = slotsOf(idx, hk, c);
      int64_t n = g.candidates(c);
      // Page p of the selection occupies slots [p*page, (p+1)*page).
      std::vector<int32_t> chosenPages;
      for (int64_t p = 0; p < pages; ++p) {
        int32_t first = sel[p * page];
        if (first < 0)
          continue;
        ASSERT_EQ((first - g.sinks) % page, 0) << where("block-topk", hk, c);
        int32_t pg = (first - int32_t(g.sinks)) / int32_t(page);
        for (int64_t t = 0; t < page; ++t) {
          int64_t key = g.sinks + pg * page + t;
          ASSERT_EQ(sel[p * page + t], key < g.sinks + n ? key : -1)
              << where("block-topk", hk, c) << " slot " << p * page + t;
        }
        chosenPages.push_back(g.sinks + pg); // as a "candidate index"
      }
      chosenPages.resize(pages, -1);
      expectTopK(chosenPages, test::pageScores(in.q, in.k, 0, hk, g, c, page),
                 g.sinks, pages, where("block-topk", hk, c));
    }
}

TEST_P(SparseKernel, SparseAttentionIsExactOverItsKeySet) {
  Inputs in = makeInputs(nq(), nk(), seed());
  Geometry g = geometry();
  // Shared indices from the token-select kernel.
  rt::Tensor idx = exec.run("select_token", {{"q", in.q}, {"k", in.k}}).at("idx");
  auto outs = runSparse("sparse_shared",
                        {{"q", in.q}, {"k", in.k}, {"v", in.v}, {"idx", idx}});
  test::RefResult ref =
      test::referenceSparse(in.q, in.k, in.v, &idx, g, 1.0 / std::sqrt(double(kD)));
  EXPECT_LE(test::relativeL2(outs.at("out"), ref.out), 2e-6)
      << "shared indices, Nq=" << nq() << " Nk=" << nk();
  const rt::Tensor &lse = outs.at("lse");
  for (int64_t i = 0; i < lse.numel(); ++i)
    ASSERT_NEAR(lse.f32()[i], ref.lse[i], 1e-5 * (1 + std::abs(ref.lse[i])));

  // Per-KV-head indices from the adaptive kernel, scale 0.2.
  rt::Tensor idx2 =
      exec.run("select_adaptive", {{"q", in.q}, {"k", in.k}}).at("idx");
  rt::Tensor out2 = runSparse("sparse_per_head", {{"q", in.q},
                                                  {"k", in.k},
                                                  {"v", in.v},
                                                  {"idx", idx2}})
                        .at("out");
  test::RefResult ref2 = test::referenceSparse(in.q, in.k, in.v, &idx2, g, 0.2);
  EXPECT_LE(test::relativeL2(out2, ref2.out), 2e-6)
      << "per-head indices, Nq=" << nq() << " Nk=" << nk();
}

TEST_P(SparseKernel, SparseAttentionTakesHandWrittenIndices) {
  // Arbitrary ascending indices with -1 holes, some visible to only part of
  // a chunk under the causal rule.
  Inputs in = makeInputs(nq(), nk(), seed() + 5);
  Geometry g = geometry();
  rt::Tensor idx({1, 1, g.chunks(), 48}, rt::DType::Int32);
  std::mt19937 rng{static_cast<unsigned>(seed())};
  for (int64_t c = 0; c < g.chunks(); ++c) {
    std::set<int32_t> pick;
    for (int t = 0; t < 40; ++t)
      pick.insert(int32_t(rng() % uint32_t(nk())));
    std::vector<int32_t> v(pick.begin(), pick.end());
    v.resize(48, -1);
    std::copy(v.begin(), v.end(), idx.i32() + c * 48);
  }
  // Keys the reference would count twice (sinks, window) are excluded from
  // the kernel's selection by construction of real selections; keep them
  // out here too.
  for (int64_t c = 0; c < g.chunks(); ++c)
    for (int64_t t = 0; t < 48; ++t) {
      int32_t &x = idx.i32()[c * 48 + t];
      if (x >= 0 && (x < g.sinks || x >= g.chunkStart(c) - g.window))
        x = -1;
    }
  rt::Tensor out = runSparse("sparse_shared", {{"q", in.q},
                                               {"k", in.k},
                                               {"v", in.v},
                                               {"idx", idx}})
                       .at("out");
  test::RefResult ref =
      test::referenceSparse(in.q, in.k, in.v, &idx, g, 1.0 / std::sqrt(double(kD)));
  EXPECT_LE(test::relativeL2(out, ref.out), 2e-6);
}

TEST_P(SparseKernel, WindowAndSinksSlidePerQueryWhateverTheChunk) {
  // docs/design.md's convention: row at position p sees j iff j <= p and
  // (j < sinks or p - j <= window); the chunk does not change it.
  struct Case {
    const char *entry;
    int64_t sinks, window, chunk;
  };
  for (const Case &c : {Case{"sparse_window", 5, 20, 24}, Case{"window_a", 0, 7, 1},
                        Case{"window_b", 16, 64, 512}, Case{"window_c", 3, 100, 8}}) {
    Inputs in = makeInputs(nq(), nk(), seed() + 7);
    Geometry g = geometry(c.sinks, c.window, c.chunk);
    rt::Tensor out =
        runSparse(c.entry, {{"q", in.q}, {"k", in.k}, {"v", in.v}}).at("out");
    test::RefResult ref = test::referenceSparse(in.q, in.k, in.v, nullptr, g,
                                                1.0 / std::sqrt(double(kD)));
    EXPECT_LE(test::relativeL2(out, ref.out), 2e-6)
        << c.entry << " sinks " << c.sinks << " window " << c.window
        << " chunk " << c.chunk << " Nq=" << nq() << " Nk=" << nk();
  }
}

TEST_P(SparseKernel, DenseFallbackRunsWhenTheContextFitsThePattern) {
  // sparse_shared: sinks 8 + 48 slots + window 32 = 88 keys.
  Inputs in = makeInputs(nq(), nk(), seed() + 3);
  rt::Tensor idx({1, 1, geometry().chunks(), 48}, rt::DType::Int32);
  std::fill(idx.i32(), idx.i32() + idx.numel(), -1); // no selection at all
  std::vector<rt::KernelTiming> prof;
  rt::Tensor out = exec.run("sparse_shared",
                            {{"q", in.q}, {"k", in.k}, {"v", in.v}, {"idx", idx}},
                            &prof)
                       .at("out");
  ASSERT_EQ(prof.size(), 1u);
  bool fits = fitsPattern(nk(), 8, 48, 32);
  EXPECT_EQ(prof[0].symbol.rfind("dense fallback: ", 0) == 0, fits)
      << prof[0].symbol << " for Nk=" << nk();
  // One query row: the decode form (split-K over the slots), sparse or not.
  const std::string &sym = prof[0].symbol;
  EXPECT_EQ(sym.size() > 7 && sym.compare(sym.size() - 7, 7, "_decode") == 0,
            nq() == 1)
      << sym << " for Nq=" << nq();
  test::RefResult ref =
      expectedSparse(in, &idx, geometry(), 48, 1.0 / std::sqrt(double(kD)));
  EXPECT_LE(test::relativeL2(out, ref.out), 2e-6);
}

TEST_P(SparseKernel, DenseRowsAreExactAttentionOfTheStridedRowsAndTail) {
  if (nk() < nq())
    GTEST_SKIP();
  // Rows after the call: 0 (it ends the prompt: the whole tail), 100 (the
  // tail's first part), 1000 (an earlier chunk: no tail).
  for (int64_t after : {int64_t(0), int64_t(100), int64_t(1000)}) {
  SCOPED_TRACE("prompt rows after the call: " + std::to_string(after));
  Inputs in = makeInputs(nq(), nk(), seed() + 9);
  rt::RunOptions opts;
  opts.promptRowsAfter = after;
  rt::Tensor rows =
      exec.run("dense_rows", {{"q", in.q}, {"k", in.k}, {"v", in.v}}, opts)
          .at("rows");
  std::vector<int64_t> map = test::denseRowMap(nq(), 16, after);
  ASSERT_EQ(rows.shape(), (std::vector<int64_t>{1, kHq, int64_t(map.size()), kD}));
  std::vector<double> ref(rows.numel());
  double scale = 1.0 / std::sqrt(double(kD));
  for (int64_t h = 0; h < kHq; ++h)
    for (size_t r = 0; r < map.size(); ++r) {
      if (map[r] < 0)
        continue; // unused row: zero
      int64_t pos = nk() - nq() + map[r];
      std::vector<int64_t> keys(pos + 1);
      std::iota(keys.begin(), keys.end(), 0);
      test::attendRow(in.q, in.k, in.v, 0, h, map[r], keys, scale,
                      ref.data() + (h * map.size() + r) * kD, nullptr);
    }
  EXPECT_LE(test::relativeL2(rows, ref), 2e-6);
  }
}

TEST_P(SparseKernel, DeltaCombinesSparseAndDenseRows) {
  // Final call: the last rows are the dense tail. Earlier chunk: no tail,
  // every row is corrected (n = Nq covers calls shorter than the tail).
  for (int64_t n : {nq(), nq() + 150})
    for (int64_t after : {int64_t(0), int64_t(100), int64_t(1000)}) {
      rt::Tensor sparse = test::randomTensor({1, kHq, n, kD}, seed() + 11);
      int64_t R = (n + 15) / 16 + test::tailRows(16);
      rt::Tensor rows = test::randomTensor({1, kHq, R, kD}, seed() + 12);
      rt::RunOptions opts;
      opts.promptRowsAfter = after;
      rt::Tensor out =
          exec.run("delta", {{"sparse", sparse}, {"rows", rows}}, opts).at("out");
      EXPECT_LE(test::relativeL2(out, test::referenceDelta(sparse, rows, 16, after)),
                1e-7)
          << "n=" << n << ", " << after << " prompt rows after the call";
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SparseKernel, ::testing::Range(0, int(std::size(kShapes))),
    [](const ::testing::TestParamInfo<int> &info) {
      return "Nq" + std::to_string(kShapes[info.param].first) + "_Nk" +
             std::to_string(kShapes[info.param].second);
    });

TEST(SparseKernelTies, EqualScoresKeepTheLowestIndices) {
  // Every key identical: every candidate's vote is bit-identical, so the
  // selection must be the first `budget` candidates.
  rt::Executor exec(sparseModule(), 2);
  rt::Tensor q = test::randomTensor({1, kHq, 40, kD}, 3);
  rt::Tensor k = test::randomTensor({1, kHkv, 500, kD}, 4);
  for (int64_t h = 0; h < kHkv; ++h)
    for (int64_t j = 1; j < 500; ++j)
      std::copy(test::row(k, 0, h, 0), test::row(k, 0, h, 0) + kD,
                k.f32() + (h * 500 + j) * kD);
  rt::Tensor idx = exec.run("select_token", {{"q", q}, {"k", k}}).at("idx");
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t t = 0; t < 48; ++t)
      ASSERT_EQ(idx.i32()[c * 48 + t], 8 + t) << "chunk " << c << " slot " << t;
}

} // namespace
