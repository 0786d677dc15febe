//===- Sparsify.cpp - attn-sparsify ---------------------------------------===//
//
// attn.attention (causal) -> attn.select (under a policy attribute, if the
// policy selects) + attn.sparse_attention. The policy is looked up by name
// in the registry (SparsityPolicy.h); nothing here knows a policy's
// algorithm.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/Passes.h"
#include "deltaflow/Common/SparseGeometry.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

namespace mlir::deltaflow {
#define GEN_PASS_DEF_ATTNSPARSIFY
#include "deltaflow/Transforms/Passes.h.inc"
} // namespace mlir::deltaflow

using namespace mlir;
using namespace mlir::deltaflow;
namespace sp = ::deltaflow::sparsity;

namespace {

struct AttnSparsifyPass
    : public mlir::deltaflow::impl::AttnSparsifyBase<AttnSparsifyPass> {
  using AttnSparsifyBase::AttnSparsifyBase;

  LogicalResult collectParams(ModuleOp module, sp::Params &params) {
    params = {{"budget", double(budget)},        {"sinks", double(sinks)},
              {"window", double(window)},        {"chunk", double(chunk)},
              {"p", double(p)},                  {"min-budget", double(minBudget)},
              {"max-budget", double(maxBudget)}, {"page", double(page)}};
    for (const std::string &kv : extra) {
      auto [name, value] = StringRef(kv).split(':');
      double v = 0;
      if (name.empty() || value.trim().getAsDouble(v))
        return emitError(module.getLoc())
               << "attn-sparsify: param '" << kv
               << "' is not of the form name:number";
      if (!std::isfinite(v))
        return emitError(module.getLoc())
               << "attn-sparsify: param '" << kv
               << "' has a non-finite value";
      params[name.str()] = v;
    }
    return success();
  }

  Attribute policyAttribute(sp::Policy &pol, const sp::Params &params) {
    MLIRContext *ctx = &getContext();
    if (pol.toAttr)
      return pol.toAttr(ctx, params);
    Builder b(ctx);
    SmallVector<NamedAttribute> entries;
    for (const auto &[name, value] : params) {
      Attribute a = value == double(int64_t(value))
                        ? Attribute(b.getI64IntegerAttr(int64_t(value)))
                        : Attribute(b.getF64FloatAttr(value));
      entries.push_back(b.getNamedAttr(name, a));
    }
    return attn::PluginPolicyAttr::get(ctx, b.getStringAttr(pol.name),
                                       b.getDictionaryAttr(entries));
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    registerBuiltinSparsityPolicies();
    bool failedAny = false;
    for (const std::string &e : sp::takeRegistrationErrors()) {
      emitError(module.getLoc()) << "attn-sparsify: " << e;
      failedAny = true;
    }
    if (failedAny)
      return signalPassFailure();
    sp::Policy *pol = sp::findPolicy(policy);
    if (!pol) {
      emitError(module.getLoc())
          << "attn-sparsify: unknown policy '" << policy
          << "' (known: " << llvm::join(sp::policyNames(), ", ") << ")";
      return signalPassFailure();
    }
    sp::Params all;
    if (failed(collectParams(module, all)))
      return signalPassFailure();
    // Every param= name is one the policy reads (a typo is an error, not a
    // silently ignored setting).
    for (const std::string &kv : extra) {
      StringRef name = StringRef(kv).split(':').first;
      if (llvm::none_of(pol->params,
                        [&](const sp::ParamSpec &ps) { return ps.name == name; })) {
        std::string known;
        for (const sp::ParamSpec &ps : pol->params)
          known += (known.empty() ? "" : ", ") + ps.name;
        emitError(module.getLoc())
            << "attn-sparsify{policy=" << policy << "}: param '" << name
            << "' is not a parameter of this policy (its parameters: " << known
            << ")";
        return signalPassFailure();
      }
    }
    // The policy sees its declared parameters and every param=.
    sp::Params params;
    for (const auto &[name, value] : all)
      if (llvm::any_of(pol->params,
                       [&, n = name](const sp::ParamSpec &ps) { return ps.name == n; }) ||
          llvm::any_of(extra, [&, n = name](const std::string &kv) {
            return StringRef(kv).split(':').first == n;
          }))
        params[name] = value;
    // Bounds and constraints: the registry's one check (checkParams).
    std::string why = sp::checkParams(pol, params);
    if (!why.empty()) {
      emitError(module.getLoc())
          << "attn-sparsify{policy=" << policy << "}: " << why;
      return signalPassFailure();
    }
    int64_t slots = pol->selects ? pol->slots(params) : 0;
    int64_t nSinks = sp::paramInt(params, "sinks"),
            nWindow = sp::paramInt(params, "window"),
            nChunk = sp::paramInt(params, "chunk");
    Attribute policyAttr = pol->selects ? policyAttribute(*pol, params)
                                        : Attribute();

    for (const std::string &name : entries)
      if (!module.lookupSymbol<func::FuncOp>(name)) {
        emitError(module.getLoc())
            << "attn-sparsify: entries: '" << name
            << "' is not a function of this module";
        return signalPassFailure();
      }
    SmallVector<attn::AttentionOp> ops;
    module.walk([&](attn::AttentionOp op) {
      auto fn = op->getParentOfType<func::FuncOp>();
      if (entries.empty() || (fn && llvm::is_contained(entries, fn.getSymName().str())))
        ops.push_back(op);
    });
    for (attn::AttentionOp op : ops) {
      if (!op.getCausal()) {
        op.emitRemark() << "attn-sparsify: left dense (not causal)";
        continue;
      }
      auto qTy = op.getQuery().getType();
      auto kTy = op.getKey().getType();
      int64_t nk = kTy.getDimSize(2);
      int64_t dense = ::deltaflow::geometry::patternKeys(
          {nSinks, nWindow, nChunk, slots});
      if (!ShapedType::isDynamic(nk) && nk <= dense) {
        op.emitRemark() << "attn-sparsify: left dense (context of " << nk
                        << " keys fits sinks + budget + window = " << dense
                        << ")";
        continue;
      }
      OpBuilder b(op);
      Value indices;
      if (pol->selects) {
        int64_t nq = qTy.getDimSize(2);
        int64_t chunks = ShapedType::isDynamic(nq)
                             ? ShapedType::kDynamic
                             : ::deltaflow::geometry::chunkCount(nq, nChunk);
        int64_t heads = pol->perKvHead ? kTy.getDimSize(1) : 1;
        auto idxTy = RankedTensorType::get(
            {qTy.getDimSize(0), heads, chunks, slots}, b.getI32Type());
        indices = b.create<attn::SelectOp>(op.getLoc(), idxTy, op.getQuery(),
                                           op.getKey(), policyAttr,
                                           op.getOffsetAttr());
      }
      auto sparse = b.create<attn::SparseAttentionOp>(
          op.getLoc(), op.getQuery(), op.getKey(), op.getValue(), indices,
          b.getI64IntegerAttr(nSinks), b.getI64IntegerAttr(nWindow),
          b.getI64IntegerAttr(nChunk), op.getScaleAttr(), op.getOffsetAttr(),
          op.getLseAttr());
      op->replaceAllUsesWith(sparse->getResults());
      op->erase();
    }
  }
};

} // namespace
