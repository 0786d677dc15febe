//===- GemmSplitTest.cpp - graph kernels split around the tensor-core GEMM -===//
//
// splitTensorCoreGemms (compiler/TensorCore/GemmSplit.cpp) on hand-built
// kernel descriptions: which kernels it splits, the three parts' graphs,
// inputs, outputs and temporaries, and the recomputed dependencies.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/KernelSpec.h"

#include <gtest/gtest.h>

using namespace deltaflow::compiler;

namespace {

GraphNode node(std::string op, std::vector<int> operands, std::vector<int64_t> shape,
               DType dtype = DType::Float32, std::vector<int64_t> ints = {}) {
  GraphNode n;
  n.op = std::move(op);
  n.operands = std::move(operands);
  n.shape = std::move(shape);
  n.dtype = dtype;
  n.ints = std::move(ints);
  return n;
}

/// k0: out = (y + r) * y with y = (x * gate) W^T, W bf16 [n, 32] read as
/// nn.Linear's weight (cast, reshape, transpose [0, 2, 1]); `rows` -1 is
/// dynamic. k1 reads k0's output.
EntryDesc entry(int64_t rows, DType weight = DType::BFloat16, int64_t n = 128,
                std::vector<int64_t> perm = {0, 2, 1}) {
  EntryDesc e;
  e.name = "main";
  KernelDesc k;
  k.name = "main_k0";
  k.loc = "m.mlir:3:4";
  k.inputs = {"x", "gate", "w", "r"};
  k.outputs = {"main_k0_r0"};
  k.graph.nodes = {
      node("input", {}, {1, rows, 32}, DType::Float32, {0}),     // 0 x
      node("input", {}, {1, rows, 32}, DType::Float32, {1}),     // 1 gate
      node("mul", {0, 1}, {1, rows, 32}),                        // 2 A
      node("input", {}, {n, 32}, weight, {2}),                   // 3 W
      node("cast", {3}, {n, 32}),                                // 4
      node("reshape", {4}, {1, n, 32}),                          // 5
      node("transpose", {5}, {1, 32, n}, DType::Float32, perm),  // 6
      node("matmul", {2, 6}, {1, rows, n}),                      // 7 y
      node("input", {}, {1, rows, n}, DType::Float32, {3}),      // 8 r
      node("add", {7, 8}, {1, rows, n}),                         // 9
      node("mul", {9, 7}, {1, rows, n}),                         // 10
  };
  KernelDesc after;
  after.name = "main_k1";
  after.inputs = {"main_k0_r0"};
  after.outputs = {"out"};
  after.graph.nodes = {node("input", {}, {1, rows, n}, DType::Float32, {0}),
                       node("exp", {0}, {1, rows, n})};
  e.kernels = {k, after};
  e.kernels[1].deps = {0};
  using deltaflow::manifest::Dim;
  Dim r = rows < 0 ? Dim::of("x", 1) : Dim::fixed(rows);
  e.temporaries = {TensorSpec{"main_k0_r0", DType::Float32, {Dim::fixed(1), r, Dim::fixed(n)}, {}}};
  return e;
}

std::vector<std::string> ops(const KernelDesc &k) {
  std::vector<std::string> r;
  for (const GraphNode &n : k.graph.nodes)
    r.push_back(n.op);
  return r;
}

} // namespace

TEST(GemmSplit, SplitsAComputedOperandTheMatmulAndItsEpilogue) {
  EntryDesc e = entry(-1);
  std::vector<GemmKernel> g = splitTensorCoreGemms(e);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].kernel, "main_k0_gemm");
  EXPECT_EQ(g[0].weight, DType::BFloat16);
  EXPECT_EQ(g[0].k, 32);
  EXPECT_EQ(g[0].n, 128);
  ASSERT_EQ(e.kernels.size(), 4u);
  const KernelDesc &a = e.kernels[0], &mm = e.kernels[1], &epi = e.kernels[2];
  // 1. A = x * gate into a temporary.
  EXPECT_EQ(a.name, "main_k0_a");
  EXPECT_EQ(a.inputs, (std::vector<std::string>{"x", "gate"}));
  EXPECT_EQ(a.outputs, (std::vector<std::string>{"main_k0_gemm_a"}));
  EXPECT_EQ(ops(a), (std::vector<std::string>{"input", "input", "mul"}));
  // 2. The matmul alone, reading A and the weight.
  EXPECT_EQ(mm.name, "main_k0_gemm");
  EXPECT_EQ(mm.inputs, (std::vector<std::string>{"main_k0_gemm_a", "w"}));
  EXPECT_EQ(mm.outputs, (std::vector<std::string>{"main_k0_gemm_c"}));
  EXPECT_EQ(ops(mm), (std::vector<std::string>{"input", "input", "cast", "reshape",
                                               "transpose", "matmul"}));
  EXPECT_EQ(mm.graph.nodes[0].ints, (std::vector<int64_t>{0}));
  EXPECT_EQ(mm.graph.nodes[1].ints, (std::vector<int64_t>{1}));
  EXPECT_EQ(mm.graph.nodes[1].dtype, DType::BFloat16);
  EXPECT_EQ(mm.graph.nodes[4].ints, (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(mm.graph.nodes[5].operands, (std::vector<int>{0, 4}));
  // 3. The epilogue reads the product once, though the graph uses it twice.
  EXPECT_EQ(epi.name, "main_k0");
  EXPECT_EQ(epi.inputs, (std::vector<std::string>{"main_k0_gemm_c", "r"}));
  EXPECT_EQ(epi.outputs, (std::vector<std::string>{"main_k0_r0"}));
  EXPECT_EQ(ops(epi), (std::vector<std::string>{"input", "input", "add", "mul"}));
  EXPECT_EQ(epi.graph.nodes[3].operands, (std::vector<int>{2, 0}));
  // Temporaries: A [1, x.1, 32], the product as the output.
  ASSERT_EQ(e.temporaries.size(), 3u);
  EXPECT_EQ(e.temporaries[1].name, "main_k0_gemm_a");
  using deltaflow::manifest::Dim;
  EXPECT_EQ(e.temporaries[1].shape,
            (std::vector<Dim>{Dim::fixed(1), Dim::of("x", 1), Dim::fixed(32)}));
  EXPECT_EQ(e.temporaries[2].name, "main_k0_gemm_c");
  EXPECT_EQ(e.temporaries[2].shape, e.temporaries[0].shape);
  // Dependencies recomputed, the later kernel's included.
  EXPECT_EQ(a.deps, (std::vector<size_t>{}));
  EXPECT_EQ(mm.deps, (std::vector<size_t>{0}));
  EXPECT_EQ(epi.deps, (std::vector<size_t>{1}));
  EXPECT_EQ(e.kernels[3].deps, (std::vector<size_t>{2}));
}

TEST(GemmSplit, LeavesWhatTheGemmDoesNotTake) {
  // Static rows below 16 (decode), an f32 weight, another transpose, and
  // output columns that are not a multiple of 128.
  for (EntryDesc e : {entry(1), entry(-1, DType::Float32), entry(-1, DType::BFloat16, 128, {0, 1, 2}),
                      entry(-1, DType::BFloat16, 200)}) {
    EXPECT_TRUE(splitTensorCoreGemms(e).empty());
    ASSERT_EQ(e.kernels.size(), 2u);
    EXPECT_EQ(e.kernels[0].graph.nodes.size(), 11u);
    EXPECT_EQ(e.temporaries.size(), 1u);
  }
  // From 16 static rows on it is split; f16 weights too.
  EntryDesc e = entry(16, DType::Float16);
  std::vector<GemmKernel> g = splitTensorCoreGemms(e);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].weight, DType::Float16);
  EXPECT_FALSE(g[0].fewRows);
  EXPECT_EQ(e.kernels.size(), 4u);
  // With the GEMV (CUDA), static rows below 16 split too, marked fewRows
  // (the GEMV alone); dynamic rows are not.
  for (int64_t rows : {1, 15}) {
    EntryDesc d = entry(rows);
    g = splitTensorCoreGemms(d, /*withGemv=*/true);
    ASSERT_EQ(g.size(), 1u) << rows;
    EXPECT_TRUE(g[0].fewRows);
    EXPECT_EQ(d.kernels.size(), 4u);
  }
  EntryDesc dyn = entry(-1);
  g = splitTensorCoreGemms(dyn, /*withGemv=*/true);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_FALSE(g[0].fewRows);
}
