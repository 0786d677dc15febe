//===- TosaOps.cpp - the TOSA subset the graph lowering knows -------------===//

#include "TosaOps.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using ::deltaflow::compiler::Dim;
using ::deltaflow::compiler::DType;
using ::deltaflow::compiler::GraphNode;

namespace mlir::deltaflow::tosa_lowering {

namespace {

/// Largest constant the lowering embeds in a kernel; weights belong in
/// function arguments (safetensors), not in the graph.
constexpr int64_t kMaxConstElements = 1 << 16;

StringRef shortName(Operation *op) {
  return op->getName().getStringRef().drop_front(strlen("tosa."));
}

/// The elementwise table (GraphPipeline.cpp) decides: one row per op.
bool isElementwiseName(StringRef n) {
  return ::deltaflow::compiler::graphElementwiseArity(n.str()) >= 0;
}

Dim fixed(int64_t n) {
  Dim d;
  d.size = n;
  return d;
}

} // namespace

OpClass classify(Operation *op) {
  if (op->getDialect() == nullptr ||
      op->getDialect()->getNamespace() != tosa::TosaDialect::getDialectNamespace())
    return OpClass::Unsupported;
  StringRef n = shortName(op);
  if (n == "const")
    return OpClass::Const;
  if (isElementwiseName(n))
    return OpClass::Elementwise;
  if (n == "reshape" || n == "transpose" || n == "slice" || n == "concat" ||
      n == "gather")
    return OpClass::Layout;
  if (n == "matmul" || n == "reduce_sum" || n == "reduce_max")
    return OpClass::Anchor;
  return OpClass::Unsupported;
}

LogicalResult describe(Operation *op, GraphNode &node) {
  node.op = shortName(op).str();
  auto resTy = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!resTy)
    return op->emitOpError() << "needs a ranked result type to be compiled";
  Type el = resTy.getElementType();
  if (el.isF32())
    node.dtype = DType::Float32;
  else if (el.isSignlessInteger(32))
    node.dtype = DType::Int32;
  else if (isa<tosa::CastOp>(op) && (el.isBF16() || el.isF16()))
    // A narrowing cast: the 16-bit Q/K/V of tensor-core attention and its
    // KV cache (round to nearest even; the partitioner keeps other readers
    // of 16-bit values out of the graph).
    node.dtype = el.isBF16() ? DType::BFloat16 : DType::Float16;
  else
    return op->emitOpError() << "has element type " << el
                             << "; the graph lowering supports f32 and i32 "
                                "(and bf16/f16 as the result of tosa.cast)";
  for (int64_t d : resTy.getShape())
    node.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);

  if (auto mul = dyn_cast<tosa::MulOp>(op)) {
    if (mul.getShift() != 0)
      return op->emitOpError() << "has shift " << int(mul.getShift())
                               << "; only shift = 0 (float multiply) is supported";
  } else if (auto c = dyn_cast<tosa::ClampOp>(op)) {
    if (el.isF32())
      node.values = {c.getMinFp().convertToDouble(),
                     c.getMaxFp().convertToDouble()};
    else
      node.values = {double(c.getMinInt()), double(c.getMaxInt())};
  } else if (auto r = dyn_cast<tosa::ReduceSumOp>(op)) {
    node.ints = {int64_t(r.getAxis())};
  } else if (auto r = dyn_cast<tosa::ReduceMaxOp>(op)) {
    node.ints = {int64_t(r.getAxis())};
  } else if (auto t = dyn_cast<tosa::TransposeOp>(op)) {
    llvm::SmallVector<int64_t> perms;
    if (failed(t.getConstantPerms(perms)))
      return op->emitOpError() << "needs constant perms to be compiled";
    node.ints.assign(perms.begin(), perms.end());
  } else if (auto s = dyn_cast<tosa::SliceOp>(op)) {
    node.ints.assign(s.getStart().begin(), s.getStart().end());
  } else if (auto c = dyn_cast<tosa::ConcatOp>(op)) {
    node.ints = {int64_t(c.getAxis())};
  } else if (auto c = dyn_cast<tosa::ConstOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!dense)
      return op->emitOpError() << "has a constant that is not dense elements";
    if (!dense.isSplat() && dense.getNumElements() > kMaxConstElements)
      return op->emitOpError()
             << "has a " << dense.getNumElements()
             << "-element constant; the limit is " << kMaxConstElements
             << " (pass weights as function arguments, loaded from "
                ".safetensors)";
    if (el.isF32()) {
      if (dense.isSplat())
        node.values = {dense.getSplatValue<APFloat>().convertToDouble()};
      else
        for (const APFloat &v : dense.getValues<APFloat>())
          node.values.push_back(v.convertToDouble());
    } else {
      if (dense.isSplat())
        node.values = {double(dense.getSplatValue<APInt>().getSExtValue())};
      else
        for (const APInt &v : dense.getValues<APInt>())
          node.values.push_back(double(v.getSExtValue()));
    }
  } else if (isa<tosa::MatMulOp>(op)) {
    if (cast<tosa::MatMulOp>(op).getQuantizationInfo())
      return op->emitOpError() << "is quantized; only float matmul is supported";
  }
  for (Value v : op->getOperands()) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t)
      return op->emitOpError() << "needs ranked operands to be compiled";
  }
  return success();
}

FailureOr<std::vector<Dim>> resultDims(Operation *op, DimsOf dimsOf) {
  auto resTy = cast<RankedTensorType>(op->getResult(0).getType());
  int64_t rank = resTy.getRank();
  std::vector<Dim> out(rank);
  for (int64_t i = 0; i < rank; ++i)
    if (!resTy.isDynamicDim(i))
      out[i] = fixed(resTy.getDimSize(i));
  auto fromOperand = [&](int64_t i, Value v, int64_t j) {
    if (resTy.isDynamicDim(i))
      out[i] = dimsOf(v)[j];
  };
  StringRef n = shortName(op);
  if (isElementwiseName(n)) {
    for (int64_t i = 0; i < rank; ++i)
      for (Value v : op->getOperands()) {
        auto t = cast<RankedTensorType>(v.getType());
        if (t.getRank() == rank && t.isDynamicDim(i)) {
          fromOperand(i, v, i);
          break;
        }
      }
  } else if (auto mm = dyn_cast<tosa::MatMulOp>(op)) {
    fromOperand(0, mm.getA(), 0);
    fromOperand(1, mm.getA(), 1);
    fromOperand(2, mm.getB(), 2);
  } else if (n == "reduce_sum" || n == "reduce_max") {
    for (int64_t i = 0; i < rank; ++i)
      fromOperand(i, op->getOperand(0), i);
  } else if (auto t = dyn_cast<tosa::TransposeOp>(op)) {
    GraphNode node;
    if (failed(describe(op, node)))
      return failure();
    for (int64_t i = 0; i < rank; ++i)
      fromOperand(i, t.getInput1(), node.ints[i]);
  } else if (auto s = dyn_cast<tosa::SliceOp>(op)) {
    for (int64_t i = 0; i < rank; ++i)
      if (resTy.isDynamicDim(i)) {
        if (s.getStart()[i] != 0)
          return op->emitOpError() << "slices dynamic dimension " << i
                                   << " from a nonzero start; only whole "
                                      "dynamic dimensions can be sliced";
        fromOperand(i, s.getInput(), i);
      }
  } else if (auto c = dyn_cast<tosa::ConcatOp>(op)) {
    for (int64_t i = 0; i < rank; ++i)
      if (i != int64_t(c.getAxis()))
        fromOperand(i, c.getOperand(0), i);
  } else if (auto g = dyn_cast<tosa::GatherOp>(op)) {
    fromOperand(0, g.getIndices(), 0);
    fromOperand(1, g.getIndices(), 1);
    fromOperand(2, g.getValues(), 2);
  } else if (auto r = dyn_cast<tosa::ReshapeOp>(op)) {
    auto inTy = cast<RankedTensorType>(r.getInput1().getType());
    int dynIn = -1, nDynIn = 0, nDynOut = 0, dynOut = -1;
    for (int64_t i = 0; i < inTy.getRank(); ++i)
      if (inTy.isDynamicDim(i))
        dynIn = int(i), ++nDynIn;
    for (int64_t i = 0; i < rank; ++i)
      if (resTy.isDynamicDim(i))
        dynOut = int(i), ++nDynOut;
    if (nDynOut > 1 || nDynIn > 1 || nDynIn != nDynOut)
      return op->emitOpError()
             << "reshapes " << inTy << " to " << resTy
             << "; the lowering needs at most one dynamic dimension that "
                "passes through unchanged";
    if (dynOut >= 0)
      fromOperand(dynOut, r.getInput1(), dynIn);
  }
  for (int64_t i = 0; i < rank; ++i)
    if (resTy.isDynamicDim(i) && out[i].like.empty())
      return op->emitOpError() << "has result dimension " << i
                               << " that the runtime cannot size from the "
                                  "entry inputs";
  return out;
}

} // namespace mlir::deltaflow::tosa_lowering
