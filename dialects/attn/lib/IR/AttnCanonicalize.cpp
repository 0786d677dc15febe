//===- AttnCanonicalize.cpp - canonicalization patterns for attn ops ------===//
//
// attn.attention:
//  * DropUnusedLse: an unused log-sum-exp result is not computed.
//  * DropDefaultOffset: `offset(Nk - Nq)` equals the default and is elided.
//  * DropTrivialCausal: when every query sees every key, `causal` is a no-op.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::deltaflow::attn;

namespace {

struct DropUnusedLse : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getLse() || !op.getLogsumexp().use_empty())
      return failure();
    auto newOp = rewriter.create<AttentionOp>(
        op.getLoc(), TypeRange{op.getOutput().getType()}, op.getQuery(),
        op.getKey(), op.getValue(), op.getScaleAttr(), op.getCausalAttr(),
        op.getOffsetAttr(), /*lse=*/UnitAttr());
    rewriter.replaceOp(op, {newOp.getOutput(), Value()});
    return success();
  }
};

/// Static (Nq, Nk), or nullopt if either is dynamic.
std::optional<std::pair<int64_t, int64_t>> staticLengths(AttentionOp op) {
  int64_t nq = op.getQuery().getType().getDimSize(2);
  int64_t nk = op.getKey().getType().getDimSize(2);
  if (ShapedType::isDynamic(nq) || ShapedType::isDynamic(nk))
    return std::nullopt;
  return std::make_pair(nq, nk);
}

struct DropDefaultOffset : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    std::optional<int64_t> off = op.getOffset();
    auto lens = staticLengths(op);
    if (!off || !lens || *off != lens->second - lens->first)
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.removeOffsetAttr(); });
    return success();
  }
};

struct DropTrivialCausal : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getCausal())
      return failure();
    // Query 0 is at position `offset`; it sees every key iff offset >= Nk-1.
    int64_t nq = op.getQuery().getType().getDimSize(2);
    int64_t nk = op.getKey().getType().getDimSize(2);
    bool trivial = false;
    if (std::optional<int64_t> off = op.getOffset())
      trivial = !ShapedType::isDynamic(nk) && *off >= nk - 1;
    else
      trivial = nq == 1; // the single query is the last position
    if (!trivial)
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.removeCausalAttr(); });
    return success();
  }
};

} // namespace

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropUnusedLse, DropDefaultOffset, DropTrivialCausal>(context);
}
