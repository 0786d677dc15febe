//===- Partition.cpp - MLIR functions -> entries of kernels ---------------===//
//
// Matmuls, attention and reductions are kernel boundaries. Elementwise and
// layout TOSA ops inline into the kernel that consumes them; an elementwise
// op that is a matmul's or reduction's only user fuses into that kernel as
// its epilogue (residual adds, SiLU*mul). A value becomes a buffer when an
// op that needs one reads it (attention, cache writes, the return), or when
// it carries a matmul/reduction that cannot fuse further. Each value's
// dimensions are tracked symbolically (static, or "dimension d of entry
// input X") so that the runtime can size outputs and temporaries.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Partition.h"
#include "TosaOps.h"
#include "deltaflow/Common/KernelGraph.h"
#include "deltaflow/Common/SparseGeometry.h"
#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/Passes.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

using namespace mlir;
using namespace ::deltaflow::compiler;
namespace attn = mlir::deltaflow::attn;
namespace tl = mlir::deltaflow::tosa_lowering;
namespace manifest = ::deltaflow::manifest;
namespace geometry = ::deltaflow::geometry;
using ::deltaflow::readAfterWriteDeps;

namespace {

std::string locString(Location loc) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (auto flc = dyn_cast<FileLineColLoc>(loc))
    os << flc.getFilename().getValue() << ":" << flc.getLine() << ":"
       << flc.getColumn();
  else
    loc.print(os);
  return s;
}

std::string nameAttr(DictionaryAttr attrs, const std::string &fallback) {
  if (attrs)
    if (auto n = attrs.getAs<StringAttr>("deltaflow.name"))
      return n.str();
  return fallback;
}

struct EntryBuilder {
  EntryDesc entry;
  llvm::DenseMap<Value, std::string> bufferOf;
  llvm::DenseMap<Value, std::vector<Dim>> dimsOf;
  int kernelCount = 0;

  /// f32 tensors everywhere; f16 and bf16 also where `allow16` (the
  /// operands of the attention ops and the arguments that feed them).
  LogicalResult checkTensor(Location loc, Type type, const Twine &what,
                            bool allow16 = false) {
    auto t = dyn_cast<RankedTensorType>(type);
    if (!t)
      return emitError(loc) << what << " must be a ranked tensor, got " << type;
    if (allow16 && (t.getElementType().isF16() || t.getElementType().isBF16()))
      return success();
    if (!t.getElementType().isF32())
      return emitError(loc) << what << " has element type "
                            << t.getElementType()
                            << (allow16 ? "; the lowering supports f32, f16 "
                                          "or bf16 tensors here"
                                        : "; the lowering supports f32 "
                                          "tensors here (f16 and bf16 only "
                                          "as operands of attention)");
    return success();
  }

  /// 16-bit rows go only into a cache of their own type (narrowed in the
  /// graph, on the device: the bf16/f16 KV cache of tensor-core attention).
  static bool sameElementType(Value a, Value b) {
    auto ta = dyn_cast<RankedTensorType>(a.getType());
    auto tb = dyn_cast<RankedTensorType>(b.getType());
    return ta && tb && ta.getElementType() == tb.getElementType();
  }

  static DType dtypeOf(Type type) {
    Type e = cast<RankedTensorType>(type).getElementType();
    return e.isSignlessInteger(32) ? DType::Int32
           : e.isF16()             ? DType::Float16
           : e.isBF16()            ? DType::BFloat16
                                   : DType::Float32;
  }

  /// f16 buffers are read only by the attention ops (as K/V); any other
  /// reader is a located error.
  LogicalResult rejectF16(Operation *op, ValueRange values, const Twine &what) {
    for (Value v : values)
      if (auto t = dyn_cast<RankedTensorType>(v.getType()))
        if (t.getElementType().isF16() || t.getElementType().isBF16())
          return op->emitOpError()
                 << what << " reads a " << t.getElementType()
                 << " tensor; 16-bit floats are supported only as operands "
                    "of attention and of a widening tosa.cast to f32 (weights)";
    return success();
  }

  /// tosa.cast of an f16/bf16 tensor to f32 (exact).
  static bool isWideningCast(Operation *op) {
    if (!isa<tosa::CastOp>(op))
      return false;
    auto in = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
    auto out = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    return in && out && out.getElementType().isF32() &&
           (in.getElementType().isF16() || in.getElementType().isBF16());
  }

  LogicalResult addArgument(func::FuncOp fn, unsigned idx) {
    BlockArgument arg = fn.getArgument(idx);
    std::string name = nameAttr(fn.getArgAttrDict(idx), "arg" + std::to_string(idx));
    auto argTy = dyn_cast<RankedTensorType>(arg.getType());
    bool isIndex = argTy && argTy.getElementType().isSignlessInteger(32);
    if (!isIndex && failed(checkTensor(arg.getLoc(), arg.getType(),
                                       "argument '" + name + "'",
                                       /*allow16=*/true)))
      return failure();
    TensorSpec t{name, dtypeOf(arg.getType()), {}, Role::Input};
    if (DictionaryAttr attrs = fn.getArgAttrDict(idx))
      if (auto role = attrs.getAs<StringAttr>("deltaflow.role")) {
        t.role = manifest::parseRole(role.str());
        if (!t.role)
          return emitError(arg.getLoc())
                 << "argument '" << name << "' has unknown deltaflow.role '"
                 << role.getValue()
                 << "' (known: weight, tokens, positions, last_row, "
                    "kv_cache, input)";
      }
    auto ty = cast<RankedTensorType>(arg.getType());
    for (int64_t d = 0; d < ty.getRank(); ++d) {
      t.shape.push_back(ty.isDynamicDim(d) ? Dim::of(name, int(d))
                                           : Dim::fixed(ty.getDimSize(d)));
    }
    std::vector<Dim> own = t.shape;
    for (Dim &d : t.shape) // inputs declare dynamic dims as -1
      if (d.size < 0)
        d = Dim();
    bufferOf[arg] = name;
    dimsOf[arg] = own;
    entry.inputs.push_back(t);
    return success();
  }

  LogicalResult requireOperands(Operation *op, ValueRange values) {
    for (Value v : values)
      if (!bufferOf.count(v))
        return op->emitOpError() << "has an operand that is not produced by "
                                    "a function argument or a kernel";
    return success();
  }

  /// Checks q/k/v and fills the static head counts, dims and types of
  /// `spec`. A 16-bit query (tensor-core attention) only where `query16`,
  /// with K and V of the same type.
  LogicalResult attentionOperands(Operation *op, Value q, Value k, Value v,
                                  AttentionSpec &spec, bool query16 = false) {
    if (auto qt = dyn_cast<RankedTensorType>(q.getType()))
      if (!query16 && (qt.getElementType().isF16() || qt.getElementType().isBF16()))
        return op->emitOpError()
               << "has a " << qt.getElementType()
               << " query; 16-bit queries compile only for attn.attention, "
                  "attn.sparse_attention, attn.dense_rows (tensor cores, "
                  "--target=cuda) and token-select's attn.select: the other "
                  "selections take f32 queries";
    for (auto [val, what] : {std::pair<Value, const char *>{q, "query"},
                             {k, "key"},
                             {v, "value"}}) {
      if (!bufferOf.count(val))
        return op->emitOpError() << what << " operand is not produced by a "
                                    "function argument or a kernel";
      if (failed(checkTensor(op->getLoc(), val.getType(),
                             Twine(op->getName().getStringRef()) + " " + what,
                             /*allow16=*/val != q || query16)))
        return failure();
    }
    auto qTy = cast<RankedTensorType>(q.getType());
    auto kTy = cast<RankedTensorType>(k.getType());
    auto vTy = cast<RankedTensorType>(v.getType());
    if (kTy.getElementType() != vTy.getElementType())
      return op->emitOpError() << "key and value must have the same element "
                                  "type to be compiled";
    spec.kvDtype = dtypeOf(kTy);
    spec.dtype = dtypeOf(qTy);
    if (spec.dtype != DType::Float32 && spec.kvDtype != spec.dtype)
      return op->emitOpError()
             << "has a " << qTy.getElementType() << " query with "
             << kTy.getElementType()
             << " key/value; a 16-bit query needs key and value of its type";
    if (spec.kvDtype == DType::BFloat16 && spec.dtype == DType::Float32)
      return op->emitOpError() << "has bf16 key/value with an f32 query; "
                                  "narrow K/V storage is f16";
    spec.hq = qTy.getDimSize(1);
    spec.hkv = kTy.getDimSize(1);
    spec.d = qTy.getDimSize(3);
    spec.dv = vTy.getDimSize(3);
    if (ShapedType::isDynamic(spec.hq) || ShapedType::isDynamic(spec.hkv) ||
        ShapedType::isDynamic(spec.d) || ShapedType::isDynamic(spec.dv))
      return op->emitOpError() << "needs static head counts and head dims to "
                                  "be compiled";
    return success();
  }

  KernelDesc newKernel(Operation *op, KernelKind kind, ValueRange inputs) {
    KernelDesc k;
    k.name = entry.name + "_k" + std::to_string(kernelCount++);
    k.kind = kind;
    k.loc = locString(op->getLoc());
    for (Value v : inputs)
      k.inputs.push_back(bufferOf[v]);
    return k;
  }

  /// Records the op's results as temporaries of the given shapes and adds
  /// the kernel.
  LogicalResult finish(Operation *op, KernelDesc k,
                       std::vector<std::vector<Dim>> resultDims) {
    for (const auto &dims : resultDims)
      for (const Dim &d : dims)
        if (d.size < 0 && d.like.empty())
          return op->emitOpError()
                 << "has a result dimension the runtime cannot size from the "
                    "entry inputs";
    for (auto [idx, res] : llvm::enumerate(op->getResults())) {
      std::string buf = k.name + "_r" + std::to_string(idx);
      bufferOf[res] = buf;
      dimsOf[res] = resultDims[idx];
      k.outputs.push_back(buf);
      entry.temporaries.push_back(TensorSpec{buf, dtypeOf(res.getType()),
                                             resultDims[idx], std::nullopt});
    }
    entry.kernels.push_back(std::move(k));
    return success();
  }

  static Dim fixed(int64_t n) { return Dim::fixed(n); }

  /// ceil(dim / div) + add; dynamic where not expressible (reported by
  /// finish()).
  static Dim derived(const Dim &d, int64_t div, int64_t add) {
    return d.derive(div, add).value_or(Dim());
  }

  /// [B, Hq, Nq, Dv] (+ [B, Hq, Nq] with lse).
  std::vector<std::vector<Dim>> attentionResults(Value q, Value v,
                                                     const AttentionSpec &s) {
    const std::vector<Dim> &qd = dimsOf[q], &vd = dimsOf[v];
    std::vector<std::vector<Dim>> dims = {{qd[0], fixed(s.hq), qd[2], vd[3]}};
    if (s.withLse)
      dims.push_back({qd[0], fixed(s.hq), qd[2]});
    return dims;
  }

  LogicalResult addAttention(attn::AttentionOp op) {
    AttentionSpec spec;
    if (failed(attentionOperands(op, op.getQuery(), op.getKey(),
                                 op.getValue(), spec, /*query16=*/true)))
      return failure();
    spec.scale = op.getEffectiveScale();
    spec.causal = op.getCausal();
    spec.offset = op.getOffset();
    spec.withLse = op.getLse();
    KernelDesc k = newKernel(op, KernelKind::Attention,
                             {op.getQuery(), op.getKey(), op.getValue()});
    k.attention = spec;
    return finish(op, k, attentionResults(op.getQuery(), op.getValue(), spec));
  }

  LogicalResult addSelect(attn::SelectOp op) {
    AttentionSpec spec;
    // A 16-bit query: the device selection (--target=cuda, token-select).
    if (failed(attentionOperands(op, op.getQuery(), op.getKey(), op.getKey(),
                                 spec, /*query16=*/true)))
      return failure();
    namespace sp = ::deltaflow::sparsity;
    SelectSpec sel;
    auto policyAttr = cast<attn::SelectionPolicyAttrInterface>(op.getPolicy());
    sel.policy = policyAttr.getPolicyName();
    sel.knobs = policyAttr.getKnobs();
    sp::Policy *policy = sp::findPolicy(sel.policy);
    if (!policy)
      return op.emitOpError() << "policy '" << sel.policy
                              << "' is not registered (load its plug-in with "
                                 "--load-pass-plugin)";
    auto idxTy = cast<RankedTensorType>(op.getIndices().getType());
    sel.hq = spec.hq;
    sel.hkv = spec.hkv;
    sel.d = spec.d;
    sel.sinks = op.getSinks();
    sel.window = op.getWindow();
    sel.chunk = op.getChunk();
    sel.slots = idxTy.getDimSize(3);
    sel.perKvHead = policyAttr.isPerKvHead();
    sel.offset = op.getOffset();
    sel.kDtype = spec.kvDtype;
    sel.qDtype = spec.dtype;
    int64_t heads = sel.perKvHead ? spec.hkv : 1;
    if (idxTy.getDimSize(1) != heads || sel.slots != policyAttr.getSlots())
      return op.emitOpError()
             << "result type " << idxTy << " does not match policy '"
             << sel.policy << "' (" << heads << " head sets of "
             << policyAttr.getSlots() << " slots)";
    KernelDesc k = newKernel(op, KernelKind::Select, {op.getQuery(), op.getKey()});
    k.select = sel;
    const std::vector<Dim> &qd = dimsOf[op.getQuery()];
    return finish(op, k,
                  {{qd[0], fixed(heads), derived(qd[2], sel.chunk, 0),
                    fixed(sel.slots)}});
  }

  /// q/k/v, scale and offset of the causal forms (sparse, dense rows).
  template <typename OpT>
  LogicalResult causalSpec(OpT op, AttentionSpec &spec, bool query16 = false) {
    if (failed(attentionOperands(op, op.getQuery(), op.getKey(),
                                 op.getValue(), spec, query16)))
      return failure();
    spec.scale = op.getEffectiveScale();
    spec.causal = true;
    spec.offset = op.getOffset();
    return success();
  }

  LogicalResult addSparseAttention(attn::SparseAttentionOp op) {
    AttentionSpec spec;
    // Both forms (window + sinks, and with a selection) have a tensor-core
    // kernel.
    if (failed(causalSpec(op, spec, /*query16=*/true)))
      return failure();
    spec.withLse = op.getLse();
    SmallVector<Value> inputs = {op.getQuery(), op.getKey(), op.getValue()};
    SparseSpec sparse;
    sparse.sinks = op.getSinks();
    sparse.window = op.getWindow();
    sparse.chunk = op.getChunk();
    if (Value idx = op.getIndices()) {
      if (failed(requireOperands(op, idx)))
        return failure();
      auto t = cast<RankedTensorType>(idx.getType());
      if (t.isDynamicDim(1) || t.isDynamicDim(3))
        return op.emitOpError() << "indices need static head and slot counts";
      sparse.selHeads = t.getDimSize(1);
      sparse.slots = t.getDimSize(3);
      inputs.push_back(idx);
    }
    KernelDesc k = newKernel(op, KernelKind::SparseAttention, inputs);
    k.attention = spec;
    k.sparse = sparse;
    return finish(op, k, attentionResults(op.getQuery(), op.getValue(), spec));
  }

  LogicalResult addDenseRows(attn::DenseRowsOp op) {
    AttentionSpec spec;
    // A 16-bit query: the tensor-core dense-rows kernel (--target=cuda).
    if (failed(causalSpec(op, spec, /*query16=*/true)))
      return failure();
    KernelDesc k = newKernel(op, KernelKind::DenseRows,
                             {op.getQuery(), op.getKey(), op.getValue()});
    k.attention = spec;
    k.stride = op.getStride();
    const std::vector<Dim> &qd = dimsOf[op.getQuery()],
                               &vd = dimsOf[op.getValue()];
    return finish(
        op, k,
        {{qd[0], fixed(spec.hq),
          derived(qd[2], k.stride, geometry::deltaExtraRows(k.stride)),
          vd[3]}});
  }

  LogicalResult addDeltaCorrect(attn::DeltaCorrectOp op) {
    if (failed(requireOperands(op, {op.getSparse(), op.getRows()})))
      return failure();
    auto sTy = cast<RankedTensorType>(op.getSparse().getType());
    if (sTy.isDynamicDim(1) || sTy.isDynamicDim(3))
      return op.emitOpError() << "needs static head count and head dim";
    KernelDesc k =
        newKernel(op, KernelKind::DeltaCorrect, {op.getSparse(), op.getRows()});
    k.stride = op.getStride();
    // f32, or the 16-bit output of tensor-core kernels (--target=cuda).
    k.attention.dtype = k.attention.kvDtype = dtypeOf(sTy);
    k.attention.hq = sTy.getDimSize(1);
    k.attention.dv = sTy.getDimSize(3);
    return finish(op, k, {dimsOf[op.getSparse()]});
  }

  // --- TOSA graph ops -----------------------------------------------------
  /// Op results that become buffers (kernel outputs).
  llvm::DenseSet<Value> materialize;

  /// Anything outside the TOSA subset (attention, cache writes, the return)
  /// reads its operands from buffers.
  static bool needsBuffer(Operation *user) {
    return tl::classify(user) == tl::OpClass::Unsupported;
  }

  /// Decides which TOSA results are materialised; see the file comment.
  void planMaterialization(Block &body) {
    llvm::DenseSet<Value> heavy;           // carries a matmul or reduction
    llvm::DenseSet<Operation *> claimed;   // already fuses one heavy operand
    for (Operation &op : body) {
      tl::OpClass c = tl::classify(&op);
      if (c == tl::OpClass::Unsupported || c == tl::OpClass::Const)
        continue;
      Value r = op.getResult(0);
      bool isHeavy = c == tl::OpClass::Anchor;
      if (c == tl::OpClass::Elementwise)
        for (Value v : op.getOperands())
          isHeavy |= heavy.count(v) && !materialize.count(v);
      bool bufferUser = llvm::any_of(r.getUsers(), needsBuffer);
      if (!isHeavy) {
        if (bufferUser || r.use_empty())
          materialize.insert(r);
        continue;
      }
      heavy.insert(r);
      Operation *u = r.hasOneUse() ? *r.getUsers().begin() : nullptr;
      bool fuse =
          u && !bufferUser && tl::classify(u) == tl::OpClass::Elementwise &&
          !claimed.count(u) &&
          cast<RankedTensorType>(u->getResult(0).getType()).getRank() ==
              cast<RankedTensorType>(r.getType()).getRank();
      if (fuse)
        claimed.insert(u);
      else
        materialize.insert(r);
    }
  }

  LogicalResult addTosa(Operation *op) {
    // 16-bit floats enter the graph only through a widening tosa.cast (the
    // bf16/f16 weights of a Hugging Face checkpoint, read from the mapped
    // file and converted as they are loaded: no f32 copy is made).
    if (!isWideningCast(op) &&
        failed(rejectF16(op, op->getOperands(), "TOSA op")))
      return failure();
    if (op->getNumResults() != 1)
      return op->emitOpError() << "has " << op->getNumResults()
                                << " results; the graph lowering expects one";
    FailureOr<std::vector<Dim>> dims = tl::resultDims(
        op, [&](Value v) -> const std::vector<Dim> & { return dimsOf[v]; });
    if (failed(dims))
      return failure();
    dimsOf[op->getResult(0)] = *dims;
    if (!materialize.count(op->getResult(0)))
      return success();
    return addGraphKernel(op);
  }

  /// One kernel computing `op`'s result from buffers: the ops it inlines are
  /// collected by a walk back to buffers (materialised values, arguments).
  LogicalResult addGraphKernel(Operation *op) {
    Value root = op->getResult(0);
    KernelDesc k = newKernel(op, KernelKind::Graph, {});
    llvm::DenseMap<Value, int> nodeOf;
    std::function<FailureOr<int>(Value)> visit =
        [&](Value x) -> FailureOr<int> {
      auto it = nodeOf.find(x);
      if (it != nodeOf.end())
        return it->second;
      GraphNode node;
      if (x != root && bufferOf.count(x)) {
        auto t = cast<RankedTensorType>(x.getType());
        node.op = "input";
        node.dtype = dtypeOf(t);
        for (int64_t d : t.getShape())
          node.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
        node.ints = {int64_t(k.inputs.size())};
        k.inputs.push_back(bufferOf[x]);
      } else {
        Operation *def = x.getDefiningOp();
        if (!def || tl::classify(def) == tl::OpClass::Unsupported)
          return op->emitOpError() << "reads a value that is neither a "
                                      "buffer nor a TOSA op";
        if (failed(tl::describe(def, node)))
          return failure();
        // transpose's perms are attributes of the node, not data.
        unsigned n = node.op == "transpose" ? 1 : def->getNumOperands();
        for (unsigned i = 0; i < n; ++i) {
          FailureOr<int> o = visit(def->getOperand(i));
          if (failed(o))
            return failure();
          node.operands.push_back(*o);
        }
      }
      k.graph.nodes.push_back(std::move(node));
      return nodeOf[x] = int(k.graph.nodes.size()) - 1;
    };
    if (failed(visit(root)))
      return failure();
    return finish(op, k, {dimsOf[root]});
  }

  /// attn.cache_write: done in place by the runtime in the session's cache;
  /// the result names the same buffer as the cache argument.
  LogicalResult addCacheWrite(attn::CacheWriteOp op) {
    auto arg = dyn_cast<BlockArgument>(op.getCache());
    if (!arg)
      return op.emitOpError() << "writes into a value that is not a function "
                                 "argument; the cache must be an argument "
                                 "(the session's KV cache)";
    if (!op.getCache().hasOneUse())
      return op.emitOpError() << "cache argument has other uses; read the "
                                 "cache through the result of cache_write";
    if (failed(requireOperands(op, {op.getUpdate()})) ||
        failed(checkTensor(op.getLoc(), op.getUpdate().getType(), "new rows",
                           /*allow16=*/sameElementType(op.getUpdate(),
                                                       op.getCache()))))
      return failure();
    std::string cache = bufferOf[op.getCache()];
    for (TensorSpec &t : entry.inputs)
      if (t.name == cache)
        t.role = Role::KvCache;
    KernelDesc k = newKernel(op, KernelKind::CacheWrite, {op.getUpdate()});
    k.outputs = {cache};
    bufferOf[op.getResult()] = cache;
    dimsOf[op.getResult()] = dimsOf[op.getCache()];
    entry.kernels.push_back(std::move(k));
    return success();
  }

  /// The "one buffer per value" baseline of the buffer plan.
  void recordValues(Operation *op) {
    // Cache writes alias the session's KV cache; it is not a temporary.
    if (isa<func::ReturnOp, attn::CacheWriteOp>(op) ||
        tl::classify(op) == tl::OpClass::Const)
      return;
    for (Value r : op->getResults()) {
      auto t = dyn_cast<RankedTensorType>(r.getType());
      if (!t || !dimsOf.count(r))
        continue;
      entry.valueBuffers.push_back(
          TensorSpec{"v" + std::to_string(entry.valueBuffers.size()),
                     dtypeOf(t), dimsOf[r], std::nullopt});
    }
  }

  /// A kernel that copies `v` into the entry output `name` (a graph of one
  /// cast to the value's own type: bit-exact, -0 and NaN included).
  LogicalResult addCopy(func::ReturnOp ret, Value v, const std::string &name) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t || !bufferOf.count(v) ||
        !(t.getElementType().isF32() || t.getElementType().isSignlessInteger(32)))
      return ret.emitOpError()
             << "returns " << v.getType()
             << " as it is; a copy is compiled for f32 and i32 tensors only";
    KernelDesc k = newKernel(ret, KernelKind::Graph, {v});
    GraphNode in, copy;
    in.op = "input";
    in.dtype = dtypeOf(t);
    for (int64_t d : t.getShape())
      in.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    in.ints = {0};
    copy.op = "cast";
    copy.operands = {0};
    copy.shape = in.shape;
    copy.dtype = in.dtype;
    k.graph.nodes = {in, copy};
    k.outputs = {name};
    entry.outputs.push_back(TensorSpec{name, in.dtype, dimsOf[v], std::nullopt});
    entry.kernels.push_back(std::move(k));
    return success();
  }

  /// Renames the temporaries that are returned to the entry's output names.
  LogicalResult addReturn(func::FuncOp fn, func::ReturnOp ret) {
    for (auto [idx, v] : llvm::enumerate(ret.getOperands())) {

      std::string name = nameAttr(fn.getResultAttrDict(idx),
                                  "result" + std::to_string(idx));
      std::string tmp = bufferOf[v];
      auto it = std::find_if(entry.temporaries.begin(), entry.temporaries.end(),
                             [&](const TensorSpec &t) { return t.name == tmp; });
      // An argument returned as it is (a rewrite such as folding x + 0 can
      // make one), or a value returned twice: the result is a copy.
      if (isa<BlockArgument>(v) || it == entry.temporaries.end()) {
        if (failed(addCopy(ret, v, name)))
          return failure();
        continue;
      }
      TensorSpec out = *it;
      out.name = name;
      bufferOf[v] = name; // a second return of v copies from here
      entry.temporaries.erase(it);
      entry.outputs.push_back(out);
      for (KernelDesc &k : entry.kernels)
        for (std::string &o : k.outputs)
          if (o == tmp)
            o = name;
      for (KernelDesc &k : entry.kernels)
        for (std::string &in : k.inputs)
          if (in == tmp)
            in = name;
    }
    return success();
  }
};

} // namespace

FailureOr<ModuleDesc> mlir::deltaflow::partitionModule(ModuleOp module) {
  registerBuiltinSparsityPolicies();
  ModuleDesc desc;
  bool failedAny = false;
  for (auto fn : module.getOps<func::FuncOp>()) {
    if (fn.isExternal() || fn.isPrivate())
      continue;
    EntryBuilder b;
    b.entry.name = fn.getSymName().str();
    LogicalResult ok = success();
    for (unsigned i = 0; i < fn.getNumArguments() && succeeded(ok); ++i)
      ok = b.addArgument(fn, i);
    b.planMaterialization(fn.getBody().front());
    for (Operation &op : fn.getBody().front()) {
      if (failed(ok))
        break;
      if (auto a = dyn_cast<attn::AttentionOp>(op))
        ok = b.addAttention(a);
      else if (auto sel = dyn_cast<attn::SelectOp>(op))
        ok = b.addSelect(sel);
      else if (auto sa = dyn_cast<attn::SparseAttentionOp>(op))
        ok = b.addSparseAttention(sa);
      else if (auto dr = dyn_cast<attn::DenseRowsOp>(op))
        ok = b.addDenseRows(dr);
      else if (auto dc = dyn_cast<attn::DeltaCorrectOp>(op))
        ok = b.addDeltaCorrect(dc);
      else if (auto cw = dyn_cast<attn::CacheWriteOp>(op))
        ok = b.addCacheWrite(cw);
      else if (tl::classify(&op) != tl::OpClass::Unsupported)
        ok = b.addTosa(&op);
      else if (auto ret = dyn_cast<func::ReturnOp>(op))
        ok = b.addReturn(fn, ret);
      else if (op.getDialect() && op.getDialect()->getNamespace() == "tosa")
        ok = op.emitOpError()
             << "is outside the TOSA subset deltaflow lowers (matmul, "
                "elementwise math, reduce_sum/max, reshape, transpose, "
                "slice, concat, gather, cast, const)";
      else
        ok = op.emitOpError() << "has no lowering to Halide yet";
      if (succeeded(ok))
        b.recordValues(&op);
    }
    if (failed(ok)) {
      failedAny = true;
      continue;
    }
    // The dependency graph: each kernel after the kernels whose outputs it
    // reads (names are final once the return has renamed the outputs).
    std::vector<std::vector<size_t>> deps = readAfterWriteDeps(b.entry.kernels);
    for (size_t i = 0; i < b.entry.kernels.size(); ++i)
      b.entry.kernels[i].deps = deps[i];
    desc.entries.push_back(std::move(b.entry));
  }
  if (failedAny)
    return failure();
  if (desc.entries.empty())
    return emitError(module.getLoc()) << "no public function to compile",
           failure();
  return desc;
}
