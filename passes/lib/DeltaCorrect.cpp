//===- DeltaCorrect.cpp - attn-delta-correct ------------------------------===//
//
// sparse = attn.sparse_attention(...)  ==>
//   rows = attn.dense_rows(q, k, v) stride(s)
//   out  = attn.delta_correct(sparse, rows) stride(s)
// Works on the output of any selection policy.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::deltaflow {
#define GEN_PASS_DEF_ATTNDELTACORRECT
#include "deltaflow/Transforms/Passes.h.inc"
} // namespace mlir::deltaflow

using namespace mlir;
using namespace mlir::deltaflow;

namespace {

struct AttnDeltaCorrectPass
    : public mlir::deltaflow::impl::AttnDeltaCorrectBase<AttnDeltaCorrectPass> {
  using AttnDeltaCorrectBase::AttnDeltaCorrectBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (stride < 1 || stride > 8192) {
      emitError(module.getLoc())
          << "attn-delta-correct: stride must be in [1, 8192], got "
          << static_cast<int64_t>(stride);
      return signalPassFailure();
    }
    SmallVector<attn::SparseAttentionOp> ops;
    module.walk([&](attn::SparseAttentionOp op) { ops.push_back(op); });
    for (attn::SparseAttentionOp op : ops) {
      if (op.getLogsumexp() && !op.getLogsumexp().use_empty()) {
        op.emitRemark() << "attn-delta-correct: skipped (its log-sum-exp is "
                           "used, and the correction does not define one)";
        continue;
      }
      // Single-query decode: its one row is a tail row, so the correction
      // would make it dense. It stays sparse; Δ corrects prefill, and
      // decode keeps the selection's speed.
      auto qTy = cast<RankedTensorType>(op.getQuery().getType());
      if (!qTy.isDynamicDim(2) && qTy.getDimSize(2) == 1) {
        op.emitRemark() << "attn-delta-correct: skipped (single-query decode: "
                           "its row is a tail row, which the correction "
                           "would make dense)";
        continue;
      }
      Value out = op.getOutput();
      if (llvm::any_of(out.getUsers(),
                       [](Operation *u) { return isa<attn::DeltaCorrectOp>(u); }))
        continue; // already corrected
      OpBuilder b(op->getContext());
      b.setInsertionPointAfter(op);
      auto strideAttr = b.getI64IntegerAttr(stride);
      auto rows = b.create<attn::DenseRowsOp>(op.getLoc(), op.getQuery(),
                                              op.getKey(), op.getValue(),
                                              strideAttr, op.getScaleAttr(),
                                              op.getOffsetAttr());
      auto corrected =
          b.create<attn::DeltaCorrectOp>(op.getLoc(), out, rows, strideAttr);
      out.replaceAllUsesExcept(corrected, corrected);
    }
  }
};

} // namespace
