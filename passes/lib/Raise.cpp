//===- Raise.cpp - attn-raise ---------------------------------------------===//
//
// Recognises attention written out in TOSA and raises it to attn.attention:
//
//   kt  = tosa.transpose k[BH,Nk,D], [0,2,1]   (or k given as [BH,D,Nk])
//   s   = tosa.matmul q[BH,Nq,D], kt
//   s   = tosa.mul s, splat(scale)            (optional, either order)
//   s   = tosa.add s, causal-mask constant    (optional, either order)
//   m   = tosa.reduce_max s {axis = 2}        (optional, with the sub)
//   e   = tosa.exp (tosa.sub s, m)
//   l   = tosa.reduce_sum e {axis = 2}
//   p   = tosa.mul e, (tosa.reciprocal l)     or  arith.divf e, l'
//                                             (l' = l or tosa.tile l [1,1,Nk])
//   out = tosa.matmul p, v[BH,Nk,Dv]
//
// ==> out = reshape(attn.attention reshape(q), reshape(k), reshape(v)
//                   scale(scale) [causal])
//
// The scale is always written out (1.0 when there is no multiply). A mask
// raises only when it is a constant holding exactly the causal pattern
// (0 where key j <= i + Nk - Nq, <= -1e4 or -inf elsewhere); any other mask
// leaves the graph as it is, as does any intermediate value with a use
// outside the chain.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SetVector.h"

#include <cmath>
#include <limits>

namespace mlir::deltaflow {
#define GEN_PASS_DEF_ATTNRAISE
#include "deltaflow/Transforms/Passes.h.inc"
} // namespace mlir::deltaflow

using namespace mlir;
using namespace mlir::deltaflow;

namespace {

/// `v` has exactly `n` uses.
bool hasUses(Value v, unsigned n) {
  return static_cast<unsigned>(std::distance(v.use_begin(), v.use_end())) == n;
}

/// The value of `v` if it is a tosa.const or arith.constant of dense
/// elements. (Not m_Constant: the ConstantLike trait's TypeID differs between
/// libMLIR.so and this library, so trait checks fail on tosa.const.)
DenseElementsAttr constantElements(Value v) {
  if (auto c = v.getDefiningOp<tosa::ConstOp>())
    return dyn_cast<DenseElementsAttr>(c.getValue());
  if (auto c = v.getDefiningOp<arith::ConstantOp>())
    return dyn_cast<DenseElementsAttr>(c.getValue());
  return {};
}

/// The splat floating-point value of a constant, if `v` is one.
std::optional<double> splatConstant(Value v) {
  DenseElementsAttr attr = constantElements(v);
  if (!attr || !attr.isSplat() ||
      !isa<FloatType>(attr.getElementType()))
    return std::nullopt;
  APFloat f = attr.getSplatValue<APFloat>();
  bool lost = false;
  f.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
  return f.convertToDouble();
}

/// True when `attr` ([1 or BH, Nq, Nk]) is exactly the causal mask with the
/// queries as the last Nq positions: 0 where j <= i + Nk - Nq, and elsewhere
/// a value that hides the key exactly: -inf, or the element type's lowest
/// finite value (s + lowest rounds to lowest or overflows to -inf for every
/// finite score s <= 0, and exp(lowest - max) is 0 in the type). A finite
/// mask above that (the -1e4 of many exporters) changes the softmax when
/// scores are large, so it is accepted only at or below `threshold`, the
/// pass's `finite-mask-threshold` option (NaN: off).
bool isCausalMask(DenseElementsAttr attr, int64_t nq, int64_t nk,
                  double threshold) {
  auto ft = dyn_cast<FloatType>(attr.getElementType());
  if (!ft || nq > nk)
    return false;
  APFloat lowest = APFloat::getLargest(ft.getFloatSemantics(), /*Negative=*/true);
  auto visibleOk = [](const APFloat &f) { return f.isZero(); };
  auto hiddenOk = [&](APFloat f) {
    if (f.isNaN())
      return false;
    if ((f.isInfinity() && f.isNegative()) ||
        f.compare(lowest) == APFloat::cmpEqual)
      return true;
    bool lost = false;
    f.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
    return !std::isnan(threshold) && f.convertToDouble() <= threshold;
  };
  int64_t offset = nk - nq;
  if (attr.isSplat()) {
    APFloat f = attr.getSplatValue<APFloat>();
    // Every key is visible to every query only when Nq == 1.
    return nq == 1 && visibleOk(f);
  }
  int64_t idx = 0;
  for (const APFloat &f : attr.getValues<APFloat>()) {
    int64_t j = idx % nk, i = (idx / nk) % nq;
    ++idx;
    if (j <= i + offset ? !visibleOk(f) : !hiddenOk(f))
      return false;
  }
  return true;
}

/// `[a, b, c]` -> `[1, a, b, c]`-style reshape shapes: the static sizes with
/// -1 for the single dynamic one; nullopt for two or more dynamic sizes.
std::optional<SmallVector<int64_t>> reshapeTarget(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> out;
  int dynamic = 0;
  for (int64_t d : shape) {
    if (ShapedType::isDynamic(d)) {
      ++dynamic;
      out.push_back(-1);
    } else {
      out.push_back(d);
    }
  }
  if (dynamic > 1)
    return std::nullopt;
  return out;
}

struct RaiseTosaAttention : OpRewritePattern<tosa::MatMulOp> {
  RaiseTosaAttention(MLIRContext *ctx, double maskThreshold)
      : OpRewritePattern(ctx), maskThreshold(maskThreshold) {}
  /// Finite mask values at or below this also hide a key (NaN: none do).
  double maskThreshold;

  LogicalResult matchAndRewrite(tosa::MatMulOp pv,
                                PatternRewriter &rw) const override {
    if (pv.getQuantizationInfo())
      return rw.notifyMatchFailure(pv, "quantized matmul");
    // Ops of the chain, from the final matmul backwards; erased in this
    // order once the final matmul is replaced.
    SmallVector<Operation *> chain;

    // --- normalisation: e / sum(e) ---
    Value probs = pv.getA(), v = pv.getB();
    if (!hasUses(probs, 1))
      return failure();
    Operation *norm = probs.getDefiningOp();
    if (!norm)
      return failure();
    chain.push_back(norm);
    Value e, sum;
    if (auto mul = dyn_cast<tosa::MulOp>(norm)) {
      if (mul.getShift() != 0)
        return failure();
      for (auto [a, b] : {std::pair(mul.getInput1(), mul.getInput2()),
                          std::pair(mul.getInput2(), mul.getInput1())}) {
        if (auto recip = b.getDefiningOp<tosa::ReciprocalOp>()) {
          if (!hasUses(recip, 1))
            return failure();
          chain.push_back(recip);
          e = a;
          sum = recip.getInput1();
          break;
        }
      }
    } else if (auto div = dyn_cast<arith::DivFOp>(norm)) {
      e = div.getLhs();
      sum = div.getRhs();
      if (auto tile = sum.getDefiningOp<tosa::TileOp>()) {
        ArrayRef<int64_t> mult = tile.getMultiples();
        if (mult.size() != 3 || mult[0] != 1 || mult[1] != 1 ||
            !hasUses(tile, 1))
          return failure();
        chain.push_back(tile);
        sum = tile.getInput1();
      }
    }
    if (!e || !sum)
      return failure();
    auto reduceSum = sum.getDefiningOp<tosa::ReduceSumOp>();
    if (!reduceSum || reduceSum.getAxis() != 2 || reduceSum.getInput() != e ||
        !hasUses(sum, 1))
      return failure();
    chain.push_back(reduceSum);
    auto exp = e.getDefiningOp<tosa::ExpOp>();
    if (!exp || !hasUses(e, 2)) // the sum and the normalisation
      return failure();
    chain.push_back(exp);

    // --- optional max subtraction ---
    Value x = exp.getInput1();
    if (auto sub = x.getDefiningOp<tosa::SubOp>()) {
      auto max = sub.getInput2().getDefiningOp<tosa::ReduceMaxOp>();
      if (!max || max.getAxis() != 2 || max.getInput() != sub.getInput1() ||
          !hasUses(sub, 1) || !hasUses(max, 1) ||
          !hasUses(sub.getInput1(), 2)) // the max and the sub
        return failure();
      chain.push_back(sub);
      chain.push_back(max);
      x = sub.getInput1();
    } else if (!hasUses(x, 1)) {
      return failure();
    }

    // --- optional causal mask ---
    bool causal = false;
    Value s = x;
    if (auto add = s.getDefiningOp<tosa::AddOp>()) {
      Value scores, mask;
      DenseElementsAttr maskAttr;
      for (auto [a, b] : {std::pair(add.getInput1(), add.getInput2()),
                          std::pair(add.getInput2(), add.getInput1())}) {
        if ((maskAttr = constantElements(b))) {
          scores = a;
          mask = b;
          break;
        }
      }
      if (!maskAttr)
        return rw.notifyMatchFailure(add, "mask is not a constant");
      auto st = dyn_cast<RankedTensorType>(scores.getType());
      auto mt = dyn_cast<RankedTensorType>(mask.getType());
      if (!st || !mt || st != add.getType() || !st.hasStaticShape() ||
          mt.getRank() != 3 || !mt.hasStaticShape() ||
          (mt.getDimSize(0) != 1 && mt.getDimSize(0) != st.getDimSize(0)) ||
          mt.getDimSize(1) != st.getDimSize(1) ||
          mt.getDimSize(2) != st.getDimSize(2))
        return failure();
      if (!isCausalMask(maskAttr, st.getDimSize(1), st.getDimSize(2),
                        maskThreshold))
        return rw.notifyMatchFailure(
            add, "mask is not exactly the causal mask (hidden entries must "
                 "be -inf or the type's lowest value, or at or below "
                 "finite-mask-threshold)");
      if (!hasUses(scores, 1))
        return failure();
      causal = true;
      chain.push_back(add);
      s = scores;
    }

    // --- optional scale ---
    double scale = 1.0;
    if (auto mul = s.getDefiningOp<tosa::MulOp>()) {
      if (mul.getShift() != 0)
        return failure();
      Value scores;
      for (auto [a, b] : {std::pair(mul.getInput1(), mul.getInput2()),
                          std::pair(mul.getInput2(), mul.getInput1())}) {
        if (auto c = splatConstant(b)) {
          scale = *c;
          scores = a;
          break;
        }
      }
      if (!scores || scores.getType() != mul.getType() || !hasUses(scores, 1))
        return failure();
      // attn.attention needs a finite non-zero scale; a graph scaled by 0
      // (uniform attention), +-inf or NaN is valid TOSA and stays as written.
      if (!std::isfinite(scale) || scale == 0.0)
        return rw.notifyMatchFailure(mul, "scale is zero or not finite");
      chain.push_back(mul);
      s = scores;
    }

    // --- scores = q k^T ---
    auto qk = s.getDefiningOp<tosa::MatMulOp>();
    if (!qk || qk.getQuantizationInfo())
      return failure();
    chain.push_back(qk);
    Value q = qk.getA(), kt = qk.getB(), k;
    tosa::TransposeOp transpose = kt.getDefiningOp<tosa::TransposeOp>();
    if (transpose) {
      SmallVector<int64_t> perms;
      if (failed(transpose.getConstantPerms(perms)) ||
          perms != SmallVector<int64_t>{0, 2, 1} || !hasUses(kt, 1))
        return failure();
      chain.push_back(transpose);
      k = transpose.getInput1();
    }

    // --- types ---
    auto qt = dyn_cast<RankedTensorType>(q.getType());
    auto ktt = dyn_cast<RankedTensorType>(kt.getType());
    auto vt = dyn_cast<RankedTensorType>(v.getType());
    auto ot = dyn_cast<RankedTensorType>(pv.getType());
    if (!qt || !ktt || !vt || !ot || qt.getRank() != 3 || ktt.getRank() != 3 ||
        vt.getRank() != 3 || ot.getRank() != 3)
      return failure();
    Type elt = qt.getElementType();
    if (!isa<FloatType>(elt) || ktt.getElementType() != elt ||
        vt.getElementType() != elt || ot.getElementType() != elt ||
        getElementTypeOrSelf(s.getType()) != elt ||
        getElementTypeOrSelf(probs.getType()) != elt)
      return failure();
    // Heads and head dims static, equal where they must be.
    int64_t bh = qt.getDimSize(0), d = qt.getDimSize(2), dv = vt.getDimSize(2);
    if (ShapedType::isDynamic(bh) || ShapedType::isDynamic(d) ||
        ShapedType::isDynamic(dv) || ktt.getDimSize(0) != bh ||
        vt.getDimSize(0) != bh || ktt.getDimSize(1) != d)
      return failure();
    int64_t nk = ktt.getDimSize(2), nkv = vt.getDimSize(1);
    if (!ShapedType::isDynamic(nk) && !ShapedType::isDynamic(nkv) && nk != nkv)
      return failure();
    auto qShape = reshapeTarget(qt.getShape());
    auto vShape = reshapeTarget(vt.getShape());
    auto kShape = reshapeTarget({bh, nk, d});
    auto oShape = reshapeTarget(ot.getShape());
    if (!qShape || !vShape || !kShape || !oShape)
      return failure();

    // --- rewrite ---
    Location loc = pv.getLoc();
    rw.setInsertionPoint(pv);
    if (!k) {
      // k given as [BH, D, Nk]: transpose it back.
      auto permsType = RankedTensorType::get({3}, rw.getI32Type());
      Value perms = rw.create<tosa::ConstOp>(
          loc, permsType,
          DenseElementsAttr::get(permsType, ArrayRef<int32_t>{0, 2, 1}));
      k = rw.create<tosa::TransposeOp>(
          loc, RankedTensorType::get({bh, nk, d}, elt), kt, perms);
    }
    auto to4d = [&](Value val, ArrayRef<int64_t> shape3) -> Value {
      SmallVector<int64_t> newShape{1};
      newShape.append(shape3.begin(), shape3.end());
      SmallVector<int64_t> typeShape;
      for (int64_t n : newShape)
        typeShape.push_back(n < 0 ? ShapedType::kDynamic : n);
      return rw.create<tosa::ReshapeOp>(loc,
                                        RankedTensorType::get(typeShape, elt),
                                        val, rw.getDenseI64ArrayAttr(newShape));
    };
    Value q4 = to4d(q, *qShape), k4 = to4d(k, *kShape), v4 = to4d(v, *vShape);
    auto attention = rw.create<attn::AttentionOp>(
        loc, q4, k4, v4, rw.getF64FloatAttr(scale),
        causal ? rw.getUnitAttr() : UnitAttr(), IntegerAttr(), UnitAttr());
    Value out = rw.create<tosa::ReshapeOp>(loc, ot, attention.getOutput(),
                                           rw.getDenseI64ArrayAttr(*oShape));
    rw.replaceOp(pv, out);
    // The chain is dead now (each value had its uses inside it); so are the
    // constants (scale, mask, perms) that nothing else uses.
    llvm::SetVector<Operation *> constants;
    for (Operation *op : chain) {
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp())
          if (isa<tosa::ConstOp, arith::ConstantOp>(def))
            constants.insert(def);
      rw.eraseOp(op);
    }
    for (Operation *c : constants)
      if (c->use_empty())
        rw.eraseOp(c);
    return success();
  }
};

struct AttnRaisePass : public mlir::deltaflow::impl::AttnRaiseBase<AttnRaisePass> {
  using AttnRaiseBase::AttnRaiseBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // 0 (the default, which printed pipelines spell out) is off.
    double threshold = std::numeric_limits<double>::quiet_NaN();
    if (finiteMaskThreshold != 0.0) {
      threshold = finiteMaskThreshold;
      if (!(threshold < 0.0) || !std::isfinite(threshold)) {
        getOperation().emitError()
            << "attn-raise: finite-mask-threshold must be a finite negative "
               "number (0: off), got "
            << threshold;
        return signalPassFailure();
      }
    }
    patterns.add<RaiseTosaAttention>(&getContext(), threshold);
    FrozenRewritePatternSet frozen(std::move(patterns));
    // Only the matmuls are visited, and nothing else is folded: a graph that
    // does not match stays exactly as written.
    SmallVector<Operation *> roots;
    getOperation().walk([&](tosa::MatMulOp op) { roots.push_back(op); });
    if (roots.empty())
      return;
    GreedyRewriteConfig config;
    config.strictMode = GreedyRewriteStrictness::ExistingOps;
    if (failed(applyOpPatternsAndFold(roots, frozen, config)))
      return signalPassFailure();
  }
};

} // namespace
