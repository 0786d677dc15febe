//===- AttnOps.cpp - attn op verifiers and type inference -----------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace mlir::deltaflow::attn;

namespace {
/// Checks the operand types of attention-like ops and computes the output
/// shape [B, Hq, Nq, Dv]. Emits a located error (when `loc` is set) and
/// fails on the first problem.
LogicalResult checkAttentionOperands(std::optional<Location> loc,
                                     StringRef opName, Type qTy, Type kTy,
                                     Type vTy,
                                     SmallVectorImpl<int64_t> &outShape,
                                     Type &elemTy) {
  auto fail = [&](const Twine &msg) {
    return emitOptionalError(loc, "'", opName, "' op ", msg);
  };
  auto q = dyn_cast<RankedTensorType>(qTy);
  auto k = dyn_cast<RankedTensorType>(kTy);
  auto v = dyn_cast<RankedTensorType>(vTy);
  if (!q || !k || !v)
    return fail("expects ranked tensor operands");
  const char *names[] = {"query", "key", "value"};
  RankedTensorType tys[] = {q, k, v};
  for (int i = 0; i < 3; ++i) {
    if (tys[i].getRank() != 4)
      return fail(Twine(names[i]) + " must have rank 4 [batch, heads, seq, "
                  "head_dim], got rank " + Twine(tys[i].getRank()));
    if (!isa<FloatType>(tys[i].getElementType()))
      return fail(Twine(names[i]) + " must have a floating-point element "
                  "type");
  }
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return fail("query, key and value must have the same element type");

  auto mismatch = [](int64_t a, int64_t b) {
    return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
  };
  if (mismatch(q.getDimSize(0), k.getDimSize(0)) ||
      mismatch(q.getDimSize(0), v.getDimSize(0)) ||
      mismatch(k.getDimSize(0), v.getDimSize(0)))
    return fail("batch sizes of query, key and value must match");
  if (mismatch(k.getDimSize(1), v.getDimSize(1)))
    return fail("key and value must have the same number of heads (" +
                Twine(k.getDimSize(1)) + " vs " + Twine(v.getDimSize(1)) + ")");
  int64_t hq = q.getDimSize(1), hkv = k.getDimSize(1);
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) &&
      (hkv == 0 || hq % hkv != 0))
    return fail("query heads (" + Twine(hq) +
                ") must be a multiple of key/value heads (" + Twine(hkv) + ")");
  if (mismatch(k.getDimSize(2), v.getDimSize(2)))
    return fail("key and value must have the same sequence length (" +
                Twine(k.getDimSize(2)) + " vs " + Twine(v.getDimSize(2)) + ")");
  if (mismatch(q.getDimSize(3), k.getDimSize(3)))
    return fail("query and key head dims must match (" +
                Twine(q.getDimSize(3)) + " vs " + Twine(k.getDimSize(3)) + ")");

  int64_t batch = q.getDimSize(0);
  if (ShapedType::isDynamic(batch))
    batch = k.getDimSize(0);
  outShape.assign({batch, hq, q.getDimSize(2), v.getDimSize(3)});
  elemTy = q.getElementType();
  return success();
}
} // namespace

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  SmallVector<int64_t> shape;
  Type elemTy;
  if (failed(checkAttentionOperands(
          location, getOperationName(), adaptor.getQuery().getType(),
          adaptor.getKey().getType(), adaptor.getValue().getType(), shape,
          elemTy)))
    return failure();
  inferredReturnTypes.push_back(RankedTensorType::get(shape, elemTy));
  if (adaptor.getLse())
    inferredReturnTypes.push_back(
        RankedTensorType::get(ArrayRef<int64_t>(shape).take_front(3), elemTy));
  return success();
}

LogicalResult AttentionOp::verify() {
  if (FloatAttr s = getScaleAttr()) {
    double value = s.getValueAsDouble();
    if (!std::isfinite(value) || value == 0.0)
      return emitOpError() << "scale must be finite and non-zero, got "
                           << value;
  }
  if (std::optional<int64_t> off = getOffset()) {
    if (*off < 0)
      return emitOpError() << "offset must be non-negative, got " << *off;
  }
  if (getLse() != static_cast<bool>(getLogsumexp()))
    return emitOpError() << "has " << getNumResults()
                         << " results but the 'lse' flag is "
                         << (getLse() ? "set" : "unset");
  return success();
}

double AttentionOp::getEffectiveScale() {
  if (FloatAttr s = getScaleAttr())
    return s.getValueAsDouble();
  int64_t d = getQuery().getType().getDimSize(3);
  return ShapedType::isDynamic(d) ? 0.0 : 1.0 / std::sqrt(double(d));
}

int64_t AttentionOp::getGroupSize() {
  int64_t hq = getQuery().getType().getDimSize(1);
  int64_t hkv = getKey().getType().getDimSize(1);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
    return ShapedType::kDynamic;
  return hq / hkv;
}

#define GET_OP_CLASSES
#include "deltaflow/Dialect/Attn/IR/AttnOps.cpp.inc"
