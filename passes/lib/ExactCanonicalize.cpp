//===- ExactCanonicalize.cpp - exact-canonicalize -------------------------===//
//
// `canonicalize` minus the folds that are not IEEE-exact. Upstream TOSA
// folds `tosa.add(x, splat 0.0)` to `x` and `tosa.mul(x, splat 0.0)` to the
// zero splat (MLIR 19, TosaCanonicalizations.cpp); IEEE 754 gives
// -0 + 0 = +0, inf * 0 = NaN and -x * 0 = -0. Those ops are kept out of the
// greedy driver's worklist, so neither they nor their folds run (exact folds
// of those ops, such as x * 1.0 or constant + constant, are lost with them);
// every other op is canonicalized and folded with the upstream pass's
// patterns, collected the way mlir/lib/Transforms/Canonicalizer.cpp does,
// but without its region simplification (deltaflow's entries are one block).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Transforms/Passes.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/Dialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Rewrite/FrozenRewritePatternSet.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::deltaflow {
#define GEN_PASS_DEF_EXACTCANONICALIZE
#include "deltaflow/Transforms/Passes.h.inc"
} // namespace mlir::deltaflow

using namespace mlir;

namespace {

/// Ops whose upstream fold can change an IEEE result.
bool hasInexactFold(Operation *op) {
  if (!isa<tosa::AddOp, tosa::MulOp>(op))
    return false;
  return isa<FloatType>(getElementTypeOrSelf(op->getResult(0).getType()));
}

struct ExactCanonicalizePass
    : public mlir::deltaflow::impl::ExactCanonicalizeBase<ExactCanonicalizePass> {
  using ExactCanonicalizeBase::ExactCanonicalizeBase;

  LogicalResult initialize(MLIRContext *context) override {
    RewritePatternSet owning(context);
    for (Dialect *dialect : context->getLoadedDialects())
      dialect->getCanonicalizationPatterns(owning);
    for (RegisteredOperationName op : context->getRegisteredOperations())
      op.getCanonicalizationPatterns(owning, context);
    patterns = std::make_shared<FrozenRewritePatternSet>(std::move(owning));
    return success();
  }

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (op != getOperation() && !hasInexactFold(op))
        ops.push_back(op);
    });
    GreedyRewriteConfig config;
    config.strictMode = GreedyRewriteStrictness::ExistingAndNewOps;
    (void)applyOpPatternsAndFold(ops, *patterns, config);
    // The ops left out are still erased when nothing uses them, and then
    // their operands' definitions when those become dead (a worklist). Ops
    // with regions are the driver's business, so nothing nested is freed
    // twice.
    auto erasable = [](Operation *op) {
      return op->getNumRegions() == 0 && isOpTriviallyDead(op);
    };
    SmallVector<Operation *> worklist;
    getOperation()->walk([&](Operation *op) {
      if (erasable(op))
        worklist.push_back(op);
    });
    llvm::SmallPtrSet<Operation *, 16> erased;
    while (!worklist.empty()) {
      Operation *op = worklist.pop_back_val();
      if (erased.contains(op) || !erasable(op))
        continue;
      SmallVector<Operation *> defs;
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp())
          defs.push_back(def);
      erased.insert(op);
      op->erase();
      for (Operation *def : defs)
        if (!erased.contains(def) && erasable(def))
          worklist.push_back(def);
    }
  }

  std::shared_ptr<const FrozenRewritePatternSet> patterns;
};

} // namespace
