//===- Partition.cpp - MLIR functions -> entries of kernels ---------------===//
//
// Matmuls, attention and reductions are kernel boundaries. Today the lowering
// knows attn.attention; any other op in an entry is reported at its location.
// Each value's dimensions are tracked symbolically (static, or "dimension d
// of entry input X") so that the runtime can size outputs and temporaries.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Partition.h"
#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace ::deltaflow::compiler;
namespace attn = mlir::deltaflow::attn;

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
  llvm::DenseMap<Value, std::vector<DimDesc>> dimsOf;
  int kernelCount = 0;

  LogicalResult checkTensor(Location loc, Type type, const Twine &what) {
    auto t = dyn_cast<RankedTensorType>(type);
    if (!t)
      return emitError(loc) << what << " must be a ranked tensor, got " << type;
    if (!t.getElementType().isF32())
      return emitError(loc) << what << " has element type "
                            << t.getElementType()
                            << "; the x86 lowering supports f32 tensors";
    return success();
  }

  LogicalResult addArgument(func::FuncOp fn, unsigned idx) {
    BlockArgument arg = fn.getArgument(idx);
    std::string name = nameAttr(fn.getArgAttrDict(idx), "arg" + std::to_string(idx));
    if (failed(checkTensor(arg.getLoc(), arg.getType(),
                           "argument '" + name + "'")))
      return failure();
    TensorDesc t{name, "float32", {}};
    auto ty = cast<RankedTensorType>(arg.getType());
    for (int64_t d = 0; d < ty.getRank(); ++d) {
      DimDesc dim;
      if (ty.isDynamicDim(d)) {
        dim.fromInput = name;
        dim.fromDim = int(d);
      } else {
        dim.size = ty.getDimSize(d);
      }
      t.shape.push_back(dim);
    }
    std::vector<DimDesc> own = t.shape;
    for (DimDesc &d : t.shape) // inputs declare dynamic dims as -1
      if (d.size < 0)
        d.fromInput.clear(), d.fromDim = -1;
    bufferOf[arg] = name;
    dimsOf[arg] = own;
    entry.inputs.push_back(t);
    return success();
  }

  LogicalResult addAttention(attn::AttentionOp op) {
    auto qTy = op.getQuery().getType(), kTy = op.getKey().getType(),
         vTy = op.getValue().getType();
    for (auto [v, what] : {std::pair<Value, const char *>{op.getQuery(), "query"},
                           {op.getKey(), "key"},
                           {op.getValue(), "value"}}) {
      if (!bufferOf.count(v))
        return op.emitOpError() << what << " operand is not produced by a "
                                   "function argument or a kernel";
      if (failed(checkTensor(op.getLoc(), v.getType(),
                             Twine("attention ") + what)))
        return failure();
    }
    int64_t hq = qTy.getDimSize(1), hkv = kTy.getDimSize(1),
            d = qTy.getDimSize(3), dv = vTy.getDimSize(3);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) ||
        ShapedType::isDynamic(d) || ShapedType::isDynamic(dv))
      return op.emitOpError() << "needs static head counts and head dims to "
                                 "be compiled";

    KernelDesc k;
    k.name = entry.name + "_k" + std::to_string(kernelCount++);
    k.kind = "attention";
    k.loc = locString(op.getLoc());
    k.attention.hq = hq;
    k.attention.hkv = hkv;
    k.attention.d = d;
    k.attention.dv = dv;
    k.attention.scale = op.getEffectiveScale();
    k.attention.causal = op.getCausal();
    k.attention.offset = op.getOffset();
    k.attention.withLse = op.getLse();
    for (Value v : {op.getQuery(), op.getKey(), op.getValue()})
      k.inputs.push_back(bufferOf[v]);

    const std::vector<DimDesc> &qd = dimsOf[op.getQuery()];
    const std::vector<DimDesc> &vd = dimsOf[op.getValue()];
    DimDesc hqDim;
    hqDim.size = hq;
    std::vector<DimDesc> outDims = {qd[0], hqDim, qd[2], vd[3]};
    std::vector<std::vector<DimDesc>> resultDims = {outDims};
    if (op.getLse())
      resultDims.push_back({qd[0], hqDim, qd[2]});
    for (auto [idx, res] : llvm::enumerate(op->getResults())) {
      std::string buf = k.name + "_r" + std::to_string(idx);
      bufferOf[res] = buf;
      dimsOf[res] = resultDims[idx];
      k.outputs.push_back(buf);
      entry.temporaries.push_back(TensorDesc{buf, "float32", resultDims[idx]});
    }
    entry.kernels.push_back(k);
    return success();
  }

  /// Renames the temporaries that are returned to the entry's output names.
  LogicalResult addReturn(func::FuncOp fn, func::ReturnOp ret) {
    for (auto [idx, v] : llvm::enumerate(ret.getOperands())) {
      std::string name = nameAttr(fn.getResultAttrDict(idx),
                                  "result" + std::to_string(idx));
      if (isa<BlockArgument>(v))
        return ret.emitOpError() << "returns function argument directly; an "
                                    "entry result must be computed by a kernel";
      std::string tmp = bufferOf[v];
      auto it = std::find_if(entry.temporaries.begin(), entry.temporaries.end(),
                             [&](const TensorDesc &t) { return t.name == tmp; });
      if (it == entry.temporaries.end())
        return ret.emitOpError() << "returns the same value twice (result "
                                 << idx << ")";
      TensorDesc out = *it;
      out.name = name;
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
    for (Operation &op : fn.getBody().front()) {
      if (failed(ok))
        break;
      if (auto attn = dyn_cast<attn::AttentionOp>(op))
        ok = b.addAttention(attn);
      else if (auto ret = dyn_cast<func::ReturnOp>(op))
        ok = b.addReturn(fn, ret);
      else
        ok = op.emitOpError() << "has no lowering to Halide yet";
    }
    if (failed(ok)) {
      failedAny = true;
      continue;
    }
    desc.entries.push_back(std::move(b.entry));
  }
  if (failedAny)
    return failure();
  if (desc.entries.empty())
    return emitError(module.getLoc()) << "no public function to compile",
           failure();
  return desc;
}
