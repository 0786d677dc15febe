//===- AttnOps.cpp - attn op verifiers and type inference -----------------===//

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Common/SparseGeometry.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

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
  // K/V may be stored narrower than the query (f16 K/V with f32 queries):
  // the kernels read them and accumulate in the query's type.
  if (k.getElementType() != v.getElementType())
    return fail("key and value must have the same element type");
  if (k.getElementType().getIntOrFloatBitWidth() >
      q.getElementType().getIntOrFloatBitWidth())
    return fail("key and value element type must not be wider than the "
                "query's");

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

namespace {
/// Output [B, Hq, Nq, Dv] and, with `lse`, [B, Hq, Nq].
template <typename Adaptor>
LogicalResult inferAttentionResults(std::optional<Location> location,
                                    StringRef opName, Adaptor adaptor,
                                    SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape;
  Type elemTy;
  if (failed(checkAttentionOperands(
          location, opName, adaptor.getQuery().getType(),
          adaptor.getKey().getType(), adaptor.getValue().getType(), shape,
          elemTy)))
    return failure();
  results.push_back(RankedTensorType::get(shape, elemTy));
  // The log-sum-exp stays f32 for 16-bit queries (as FlashAttention's).
  Type lseTy = elemTy.getIntOrFloatBitWidth() < 32
                   ? Type(Float32Type::get(elemTy.getContext()))
                   : elemTy;
  if (adaptor.getLse())
    results.push_back(
        RankedTensorType::get(ArrayRef<int64_t>(shape).take_front(3), lseTy));
  return success();
}
} // namespace

LogicalResult AttentionOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  return inferAttentionResults(location, getOperationName(), adaptor,
                               inferredReturnTypes);
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

//===----------------------------------------------------------------------===//
// Policy attributes
//===----------------------------------------------------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnAttrInterfaces.cpp.inc"

namespace {
using EmitFn = function_ref<InFlightDiagnostic()>;
namespace sp = ::deltaflow::sparsity;

/// The one check of a policy's parameters: the registry's bounds
/// (checkParams). A policy that is not registered (a plug-in not loaded)
/// gets the bounds every policy shares.
LogicalResult verifyKnobs(EmitFn emitError, const std::string &policy,
                          const sp::Params &knobs) {
  std::string why = sp::checkParams(sp::findPolicy(policy), knobs);
  if (!why.empty())
    return emitError() << "policy '" << policy << "': " << why;
  return success();
}

sp::Params tokenSelectKnobs(int64_t budget, int64_t sinks, int64_t window,
                            int64_t chunk) {
  return {{"budget", double(budget)}, {"sinks", double(sinks)},
          {"window", double(window)}, {"chunk", double(chunk)}};
}
sp::Params adaptiveKnobs(const APFloat &p, int64_t minBudget,
                         int64_t maxBudget, int64_t sinks, int64_t window,
                         int64_t chunk) {
  return {{"p", p.convertToDouble()},       {"min-budget", double(minBudget)},
          {"max-budget", double(maxBudget)}, {"sinks", double(sinks)},
          {"window", double(window)},       {"chunk", double(chunk)}};
}
sp::Params blockTopKKnobs(int64_t budget, int64_t page, int64_t sinks,
                          int64_t window, int64_t chunk) {
  return {{"budget", double(budget)}, {"page", double(page)},
          {"sinks", double(sinks)},   {"window", double(window)},
          {"chunk", double(chunk)}};
}
sp::Params dictionaryKnobs(DictionaryAttr params) {
  sp::Params knobs;
  if (params)
    for (NamedAttribute a : params) {
      if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
        knobs[a.getName().str()] = double(i.getInt());
      else if (auto f = dyn_cast<FloatAttr>(a.getValue()))
        knobs[a.getName().str()] = f.getValueAsDouble();
    }
  return knobs;
}
} // namespace

// The interface's questions, answered from the knobs and the registry.
int64_t SelectionPolicyAttrInterface::getSinks() {
  return sp::paramInt(getKnobs(), "sinks");
}
int64_t SelectionPolicyAttrInterface::getWindow() {
  return sp::paramInt(getKnobs(), "window");
}
int64_t SelectionPolicyAttrInterface::getChunk() {
  return sp::paramInt(getKnobs(), "chunk");
}
int64_t SelectionPolicyAttrInterface::getSlots() {
  sp::Policy *p = sp::findPolicy(getPolicyName());
  return p && p->slots ? p->slots(getKnobs()) : -1;
}
bool SelectionPolicyAttrInterface::isPerKvHead() {
  sp::Policy *p = sp::findPolicy(getPolicyName());
  return p && p->perKvHead;
}

std::string TokenSelectAttr::getPolicyName() const { return "token-select"; }
std::map<std::string, double> TokenSelectAttr::getKnobs() const {
  return tokenSelectKnobs(getBudget(), getSinks(), getWindow(), getChunk());
}
LogicalResult TokenSelectAttr::verify(EmitFn emitError, int64_t budget,
                                      int64_t sinks, int64_t window,
                                      int64_t chunk) {
  return verifyKnobs(emitError, "token-select",
                     tokenSelectKnobs(budget, sinks, window, chunk));
}

std::string AdaptiveAttr::getPolicyName() const { return "adaptive"; }
std::map<std::string, double> AdaptiveAttr::getKnobs() const {
  return adaptiveKnobs(getP(), getMinBudget(), getMaxBudget(), getSinks(),
                       getWindow(), getChunk());
}
LogicalResult AdaptiveAttr::verify(EmitFn emitError, APFloat p,
                                   int64_t minBudget, int64_t maxBudget,
                                   int64_t sinks, int64_t window,
                                   int64_t chunk) {
  return verifyKnobs(emitError, "adaptive",
                     adaptiveKnobs(p, minBudget, maxBudget, sinks, window, chunk));
}

std::string BlockTopKAttr::getPolicyName() const { return "block-topk"; }
std::map<std::string, double> BlockTopKAttr::getKnobs() const {
  return blockTopKKnobs(getBudget(), getPage(), getSinks(), getWindow(),
                        getChunk());
}
LogicalResult BlockTopKAttr::verify(EmitFn emitError, int64_t budget,
                                    int64_t page, int64_t sinks,
                                    int64_t window, int64_t chunk) {
  return verifyKnobs(emitError, "block-topk",
                     blockTopKKnobs(budget, page, sinks, window, chunk));
}

std::string PluginPolicyAttr::getPolicyName() const {
  return getName().getValue().str();
}
std::map<std::string, double> PluginPolicyAttr::getKnobs() const {
  return dictionaryKnobs(getParams());
}
LogicalResult PluginPolicyAttr::verify(EmitFn emitError, StringAttr name,
                                       DictionaryAttr params) {
  if (!name || name.getValue().empty())
    return emitError() << "policy name must not be empty";
  for (const char *key : {"sinks", "window", "chunk"})
    if (!params || !params.getAs<IntegerAttr>(key))
      return emitError() << "policy '" << name.getValue()
                         << "' needs an integer '" << key << "' parameter";
  return verifyKnobs(emitError, name.getValue().str(), dictionaryKnobs(params));
}

//===----------------------------------------------------------------------===//
// SelectOp
//===----------------------------------------------------------------------===//

namespace {
int64_t ceilDivOrDynamic(int64_t n, int64_t d) {
  return ShapedType::isDynamic(n) ? ShapedType::kDynamic : (n + d - 1) / d;
}
SelectionPolicyAttrInterface policyOf(SelectOp op) {
  return cast<SelectionPolicyAttrInterface>(op.getPolicy());
}
} // namespace

int64_t SelectOp::getSinks() {
  return policyOf(*this).getSinks();
}
int64_t SelectOp::getWindow() {
  return policyOf(*this).getWindow();
}
int64_t SelectOp::getChunk() {
  return policyOf(*this).getChunk();
}

LogicalResult SelectOp::verify() {
  SmallVector<int64_t> shape;
  Type elemTy;
  if (failed(checkAttentionOperands(getLoc(), getOperationName(),
                                    getQuery().getType(), getKey().getType(),
                                    getKey().getType(), shape, elemTy)))
    return failure();
  auto idx = cast<RankedTensorType>(getIndices().getType());
  if (idx.getRank() != 4 || !idx.getElementType().isSignlessInteger(32))
    return emitOpError() << "result must be a rank-4 tensor of i32 "
                            "[batch, heads, chunks, slots], got "
                         << idx;
  int64_t hkv = cast<RankedTensorType>(getKey().getType()).getDimSize(1);
  int64_t hs = idx.getDimSize(1);
  if (!ShapedType::isDynamic(hs) && hs != 1 && !ShapedType::isDynamic(hkv) &&
      hs != hkv)
    return emitOpError() << "result heads must be 1 (shared) or the " << hkv
                         << " key/value heads, got " << hs;
  if (ShapedType::isDynamic(idx.getDimSize(3)) || idx.getDimSize(3) <= 0)
    return emitOpError() << "result needs a static, positive slot count";
  int64_t chunks = ceilDivOrDynamic(shape[2], getChunk());
  if (!ShapedType::isDynamic(chunks) && !idx.isDynamicDim(2) &&
      idx.getDimSize(2) != chunks)
    return emitOpError() << "result has " << idx.getDimSize(2)
                         << " chunks but " << shape[2] << " query rows in chunks of "
                         << getChunk() << " make " << chunks;
  if (std::optional<int64_t> off = getOffset(); off && *off < 0)
    return emitOpError() << "offset must be non-negative, got " << *off;
  return success();
}

//===----------------------------------------------------------------------===//
// SparseAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult SparseAttentionOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  return inferAttentionResults(location, getOperationName(), adaptor,
                               inferredReturnTypes);
}

namespace {
LogicalResult verifyScaleOffset(Operation *op, FloatAttr scale,
                                std::optional<int64_t> offset) {
  if (scale) {
    double value = scale.getValueAsDouble();
    if (!std::isfinite(value) || value == 0.0)
      return op->emitOpError() << "scale must be finite and non-zero, got "
                               << value;
  }
  if (offset && *offset < 0)
    return op->emitOpError() << "offset must be non-negative, got " << *offset;
  return success();
}

double effectiveScale(FloatAttr scale, Value query) {
  if (scale)
    return scale.getValueAsDouble();
  int64_t d = cast<RankedTensorType>(query.getType()).getDimSize(3);
  return ShapedType::isDynamic(d) ? 0.0 : 1.0 / std::sqrt(double(d));
}
} // namespace

LogicalResult SparseAttentionOp::verify() {
  if (failed(verifyScaleOffset(*this, getScaleAttr(), getOffset())))
    return failure();
  if (getSinks() < 0 || getWindow() < 0 || getChunk() <= 0)
    return emitOpError() << "needs sinks >= 0, window >= 0 and chunk > 0, got "
                         << getSinks() << ", " << getWindow() << ", "
                         << getChunk();
  if (getLse() != static_cast<bool>(getLogsumexp()))
    return emitOpError() << "has " << getNumResults()
                         << " results but the 'lse' flag is "
                         << (getLse() ? "set" : "unset");
  if (Value idx = getIndices()) {
    auto t = cast<RankedTensorType>(idx.getType());
    if (t.getRank() != 4 || !t.getElementType().isSignlessInteger(32))
      return emitOpError() << "indices must be a rank-4 i32 tensor, got " << t;
    if (auto sel = idx.getDefiningOp<SelectOp>())
      if (sel.getSinks() != getSinks() || sel.getWindow() != getWindow() ||
          sel.getChunk() != getChunk())
        return emitOpError() << "sinks/window/chunk (" << getSinks() << ", "
                             << getWindow() << ", " << getChunk()
                             << ") differ from its selection's ("
                             << sel.getSinks() << ", " << sel.getWindow()
                             << ", " << sel.getChunk() << ")";
  }
  return success();
}

double SparseAttentionOp::getEffectiveScale() {
  return effectiveScale(getScaleAttr(), getQuery());
}

//===----------------------------------------------------------------------===//
// DenseRowsOp and DeltaCorrectOp
//===----------------------------------------------------------------------===//

int64_t DenseRowsOp::tailRows(int64_t stride) {
  return ::deltaflow::geometry::deltaExtraRows(stride);
}

LogicalResult DenseRowsOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  SmallVector<int64_t> shape;
  Type elemTy;
  if (failed(checkAttentionOperands(
          location, getOperationName(), adaptor.getQuery().getType(),
          adaptor.getKey().getType(), adaptor.getValue().getType(), shape,
          elemTy)))
    return failure();
  int64_t stride = adaptor.getStride();
  if (stride <= 0)
    return emitOptionalError(location, "'", getOperationName(),
                             "' op stride must be > 0, got ", stride);
  if (!ShapedType::isDynamic(shape[2]))
    shape[2] = ceilDivOrDynamic(shape[2], stride) + tailRows(stride);
  inferredReturnTypes.push_back(RankedTensorType::get(shape, elemTy));
  return success();
}

LogicalResult DenseRowsOp::verify() {
  return verifyScaleOffset(*this, getScaleAttr(), getOffset());
}

double DenseRowsOp::getEffectiveScale() {
  return effectiveScale(getScaleAttr(), getQuery());
}

LogicalResult DeltaCorrectOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  inferredReturnTypes.push_back(adaptor.getSparse().getType());
  return success();
}

LogicalResult DeltaCorrectOp::verify() {
  auto s = cast<RankedTensorType>(getSparse().getType());
  auto r = cast<RankedTensorType>(getRows().getType());
  int64_t stride = getStride();
  if (stride <= 0)
    return emitOpError() << "stride must be > 0, got " << stride;
  if (s.getRank() != 4 || r.getRank() != 4)
    return emitOpError() << "expects rank-4 sparse output and dense rows";
  if (s.getElementType() != r.getElementType())
    return emitOpError() << "sparse output and dense rows must have the same "
                            "element type";
  for (int d : {0, 1, 3})
    if (!s.isDynamicDim(d) && !r.isDynamicDim(d) &&
        s.getDimSize(d) != r.getDimSize(d))
      return emitOpError() << "dimension " << d << " differs: " << s.getDimSize(d)
                           << " (sparse) vs " << r.getDimSize(d) << " (rows)";
  if (!s.isDynamicDim(2) && !r.isDynamicDim(2)) {
    int64_t want = (s.getDimSize(2) + stride - 1) / stride +
                   DenseRowsOp::tailRows(stride);
    if (r.getDimSize(2) != want)
      return emitOpError() << "dense rows has " << r.getDimSize(2)
                           << " rows; stride " << stride << " over "
                           << s.getDimSize(2) << " query rows needs " << want;
  }
  if (auto rows = getRows().getDefiningOp<DenseRowsOp>())
    if (rows.getStride() != stride)
      return emitOpError() << "stride " << stride
                           << " differs from its dense rows' stride "
                           << rows.getStride();
  return success();
}

LogicalResult CacheWriteOp::verify() {
  auto c = cast<RankedTensorType>(getCache().getType());
  auto n = cast<RankedTensorType>(getUpdate().getType());
  if (c.getRank() != 4 || n.getRank() != 4)
    return emitOpError() << "expects rank-4 cache and new rows [B, Hkv, N, D]";
  // The rows are written in the cache's element type: same type, or f32
  // rows narrowed into an f16 cache (f16 KV storage).
  if (c.getElementType() != n.getElementType() &&
      !(c.getElementType().isF16() && n.getElementType().isF32()))
    return emitOpError() << "cannot write " << n.getElementType()
                         << " rows into a " << c.getElementType()
                         << " cache (same type, or f32 rows into an f16 cache)";
  for (int d : {0, 1, 3})
    if (!c.isDynamicDim(d) && !n.isDynamicDim(d) &&
        c.getDimSize(d) != n.getDimSize(d))
      return emitOpError() << "dimension " << d << " differs: " << c.getDimSize(d)
                           << " (cache) vs " << n.getDimSize(d) << " (new)";
  if (!c.isDynamicDim(2) && !n.isDynamicDim(2) &&
      n.getDimSize(2) > c.getDimSize(2))
    return emitOpError() << "writes " << n.getDimSize(2)
                         << " rows into a cache view of " << c.getDimSize(2);
  return success();
}
