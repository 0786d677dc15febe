//===- AttentionKernelTest.cpp - compiled attention vs float64 ------------===//
//
// The fixture module (fixtures/attention_variants.mlir) is compiled by
// deltaflow-compile at build time and run through the runtime, exactly as a
// user would. Outputs are NaN-poisoned by the executor before each run, so an
// unwritten element fails the finiteness check.
//
//===----------------------------------------------------------------------===//

#include "Reference.h"

#include "deltaflow/Runtime/Executor.h"

#include <gtest/gtest.h>

#include <tuple>

using namespace deltaflow;

namespace {

struct Variant {
  const char *entry;
  int64_t B, Hq, Hkv, D;
  double scale; // 0: 1/sqrt(D)
  bool causal;
  int64_t offset; // -1: default
  bool lse;
  bool f16kv = false; // K/V stored as float16
};

const Variant kVariants[] = {
    {"mha_d64_causal", 1, 4, 4, 64, 0, true, -1, false},
    {"gqa4_d128_scaled", 1, 8, 2, 128, 0.05, false, -1, false},
    {"gqa4_d128_causal", 1, 8, 2, 128, 0, true, -1, false},
    {"gqa8_d64_offset_lse", 2, 8, 1, 64, 0.2, true, 3, true},
    {"gqa4_d64_f16kv_lse", 2, 8, 2, 64, 0, true, -1, true, true},
};

// (Nq, Nk): odd and prime lengths, lengths not divisible by the tiles
// (16 queries, 256-key blocks, 1024-key decode chunks), Nq = 1 (decode),
// Nq != Nk, and a few multi-block/multi-chunk cases.
const std::pair<int64_t, int64_t> kShapes[] = {
    {1, 1},    {1, 37},   {1, 1025}, {1, 3001}, {2, 2},    {3, 5},
    {4, 4},    {5, 17},   {13, 13},  {16, 16},  {17, 300}, {31, 257},
    {64, 64},  {97, 513}, {131, 131}, {1, 4099}, {33, 1031}};

std::shared_ptr<rt::Module> fixtureModule() {
  static std::shared_ptr<rt::Module> m =
      rt::Module::load(DELTAFLOW_FIXTURE_DIR "/attention_variants.so");
  return m;
}

class AttentionKernel
    : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(AttentionKernel, MatchesFloat64Reference) {
  const Variant &var = kVariants[std::get<0>(GetParam())];
  auto [nq, nk] = kShapes[std::get<1>(GetParam())];
  int64_t offset = var.offset;
  if (var.causal && offset < 0 && nk < nq)
    GTEST_SKIP() << "causal default offset needs Nk >= Nq";
  uint64_t seed = uint64_t(nq) * 1000003u + uint64_t(nk) * 7919u +
                  uint64_t(std::get<0>(GetParam()));
  rt::Tensor q = test::randomTensor({var.B, var.Hq, nq, var.D}, seed);
  rt::Tensor k = test::randomTensor({var.B, var.Hkv, nk, var.D}, seed + 1);
  rt::Tensor v = test::randomTensor({var.B, var.Hkv, nk, var.D}, seed + 2);

  if (var.f16kv) { // the reference sees the same f16-rounded K/V
    k = k.toFloat16();
    v = v.toFloat16();
  }
  rt::Executor exec(fixtureModule(), 2);
  auto outs = exec.run(var.entry, {{"q", q}, {"k", k}, {"v", v}});
  if (var.f16kv) {
    k = k.toFloat32();
    v = v.toFloat32();
  }
  double scale = var.scale > 0 ? var.scale : 1.0 / std::sqrt(double(var.D));
  test::RefResult ref = test::referenceAttention(q, k, v, scale, var.causal, offset);

  const rt::Tensor &out = outs.at("out");
  ASSERT_EQ(out.shape(), (std::vector<int64_t>{var.B, var.Hq, nq, var.D}));
  double err = test::relativeL2(out, ref.out);
  EXPECT_LE(err, 1e-4) << var.entry << " Nq=" << nq << " Nk=" << nk
                       << " (NaN: some element unwritten or not finite)";
  if (var.lse) {
    const rt::Tensor &lse = outs.at("lse");
    ASSERT_EQ(lse.shape(), (std::vector<int64_t>{var.B, var.Hq, nq}));
    for (int64_t i = 0; i < lse.numel(); ++i)
      ASSERT_NEAR(lse.f32()[i], ref.lse[i], 1e-4 * (1 + std::abs(ref.lse[i])))
          << "lse element " << i;
  }
}

std::string caseName(const ::testing::TestParamInfo<std::tuple<int, int>> &info) {
  const auto &shape = kShapes[std::get<1>(info.param)];
  return std::string(kVariants[std::get<0>(info.param)].entry) + "_Nq" +
         std::to_string(shape.first) + "_Nk" + std::to_string(shape.second);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionKernel,
    ::testing::Combine(::testing::Range(0, int(std::size(kVariants))),
                       ::testing::Range(0, int(std::size(kShapes)))),
    caseName);

} // namespace
