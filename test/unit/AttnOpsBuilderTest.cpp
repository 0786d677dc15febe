//===- AttnOpsBuilderTest.cpp - attn ops through the C++ builder API ------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::deltaflow;

namespace {

class AttnBuilderTest : public ::testing::Test {
protected:
  AttnBuilderTest() {
    DialectRegistry registry;
    registerDeltaflowDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, Float32Type::get(&ctx));
  }

  /// Builds func @f(q, k, v) and calls `body` to create the attention op.
  template <typename Fn>
  OwningOpRef<ModuleOp> build(RankedTensorType q, RankedTensorType k,
                              RankedTensorType v, Fn body) {
    OpBuilder b(&ctx);
    auto loc = b.getUnknownLoc();
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
    b.setInsertionPointToEnd(module->getBody());
    auto fn = b.create<func::FuncOp>(loc, "f",
                                     b.getFunctionType({q, k, v}, {}));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToEnd(entry);
    body(b, entry->getArgument(0), entry->getArgument(1),
         entry->getArgument(2));
    b.create<func::ReturnOp>(loc);
    return module;
  }

  MLIRContext ctx;
};

TEST_F(AttnBuilderTest, InfersOutputAndLseTypes) {
  int64_t dyn = ShapedType::kDynamic;
  attn::AttentionOp op;
  auto module = build(tensor({1, 32, dyn, 128}), tensor({1, 8, dyn, 128}),
                      tensor({1, 8, dyn, 64}),
                      [&](OpBuilder &b, Value q, Value k, Value v) {
                        op = b.create<attn::AttentionOp>(
                            b.getUnknownLoc(), q, k, v,
                            b.getF64FloatAttr(0.125), b.getUnitAttr(),
                            b.getI64IntegerAttr(7), b.getUnitAttr());
                      });
  ASSERT_TRUE(succeeded(verify(*module)));
  EXPECT_EQ(op.getOutput().getType(), tensor({1, 32, dyn, 64}));
  ASSERT_TRUE(op.getLogsumexp());
  EXPECT_EQ(op.getLogsumexp().getType(), tensor({1, 32, dyn}));
  EXPECT_EQ(op.getGroupSize(), 4);
  EXPECT_DOUBLE_EQ(op.getEffectiveScale(), 0.125);
  EXPECT_TRUE(op.getCausal());
  EXPECT_EQ(op.getOffset(), 7);
}

TEST_F(AttnBuilderTest, DefaultsScaleToInverseSqrtHeadDim) {
  attn::AttentionOp op;
  auto module = build(tensor({2, 4, 3, 64}), tensor({2, 4, 5, 64}),
                      tensor({2, 4, 5, 64}),
                      [&](OpBuilder &b, Value q, Value k, Value v) {
                        op = b.create<attn::AttentionOp>(
                            b.getUnknownLoc(), q, k, v, FloatAttr(),
                            UnitAttr(), IntegerAttr(), UnitAttr());
                      });
  ASSERT_TRUE(succeeded(verify(*module)));
  EXPECT_EQ(op->getNumResults(), 1u);
  EXPECT_DOUBLE_EQ(op.getEffectiveScale(), 0.125);
  EXPECT_FALSE(op.getCausal());
}

TEST_F(AttnBuilderTest, RejectsBadGroupingWithLocatedError) {
  std::string diag;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    diag = d.str();
    return success();
  });
  OpBuilder b(&ctx);
  SmallVector<Type> inferred;
  auto loc = FileLineColLoc::get(&ctx, "model.mlir", 3, 7);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto fn = b.create<func::FuncOp>(
      loc, "f",
      b.getFunctionType({tensor({1, 6, 4, 8}), tensor({1, 4, 4, 8}),
                         tensor({1, 4, 4, 8})},
                        {}));
  Block *entry = fn.addEntryBlock();
  attn::AttentionOp::Adaptor adaptor(entry->getArguments(), DictionaryAttr());
  EXPECT_TRUE(failed(attn::AttentionOp::inferReturnTypes(&ctx, loc, adaptor,
                                                         inferred)));
  EXPECT_NE(diag.find("must be a multiple of key/value heads"),
            std::string::npos)
      << diag;
}

} // namespace
