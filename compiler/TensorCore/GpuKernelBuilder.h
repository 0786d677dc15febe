//===- GpuKernelBuilder.h - shared pieces of the MLIR-built GPU kernels -*- C++ -*-===//
//
// Internal to compiler/TensorCore: the scalar helpers every kernel body
// uses (arith on index/i32/f32 values, NVVM intrinsics, warp shuffles),
// the dialect registry, and the lowering of a gpu.module to PTX text
// (gpu -> nvvm -> LLVM NVPTX back end, sm_80). MLIR types appear here, so
// only the kernel translation units include it.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_TENSORCORE_GPUKERNELBUILDER_H
#define DELTAFLOW_COMPILER_TENSORCORE_GPUKERNELBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <memory>
#include <string>
#include <vector>

namespace deltaflow::compiler {

/// Helpers over an ImplicitLocOpBuilder; index arithmetic folds where the
/// operands are constant. Unsigned unless named signed (slt, sle, maxs).
class GpuKernelBuilder {
public:
  explicit GpuKernelBuilder(mlir::ImplicitLocOpBuilder &b)
      : b(b), f32(b.getF32Type()), i32(b.getI32Type()) {}

protected:
  using Value = mlir::Value;
  mlir::ImplicitLocOpBuilder &b;
  mlir::Type f32, i32;

  Value idx(int64_t v) { return b.create<mlir::arith::ConstantIndexOp>(v); }
  Value f32c(double v) {
    return b.create<mlir::arith::ConstantOp>(b.getF32FloatAttr(float(v)));
  }
  Value i32c(int32_t v) {
    return b.create<mlir::arith::ConstantOp>(b.getI32IntegerAttr(v));
  }
  Value add(Value x, Value y) { return b.create<mlir::arith::AddIOp>(x, y); }
  Value sub(Value x, Value y) { return b.create<mlir::arith::SubIOp>(x, y); }
  Value mul(Value x, Value y) { return b.create<mlir::arith::MulIOp>(x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, idx(y)) : x; }
  Value sub(Value x, int64_t y) { return y ? sub(x, idx(y)) : x; }
  Value mul(Value x, int64_t y) { return y == 1 ? x : mul(x, idx(y)); }
  Value div(Value x, int64_t y) { return b.create<mlir::arith::DivUIOp>(x, idx(y)); }
  Value rem(Value x, int64_t y) { return b.create<mlir::arith::RemUIOp>(x, idx(y)); }
  Value minu(Value x, Value y) { return b.create<mlir::arith::MinUIOp>(x, y); }
  Value ult(Value x, Value y) {
    return b.create<mlir::arith::CmpIOp>(mlir::arith::CmpIPredicate::ult, x, y);
  }
  Value ule(Value x, Value y) {
    return b.create<mlir::arith::CmpIOp>(mlir::arith::CmpIPredicate::ule, x, y);
  }
  Value maxu(Value x, Value y) { return b.create<mlir::arith::MaxUIOp>(x, y); }
  Value maxs(Value x, Value y) { return b.create<mlir::arith::MaxSIOp>(x, y); }
  Value mins(Value x, Value y) { return b.create<mlir::arith::MinSIOp>(x, y); }
  Value slt(Value x, Value y) {
    return b.create<mlir::arith::CmpIOp>(mlir::arith::CmpIPredicate::slt, x, y);
  }
  Value sle(Value x, Value y) {
    return b.create<mlir::arith::CmpIOp>(mlir::arith::CmpIPredicate::sle, x, y);
  }
  Value land(Value x, Value y) { return b.create<mlir::arith::AndIOp>(x, y); }
  Value select(Value c, Value x, Value y) {
    return b.create<mlir::arith::SelectOp>(c, x, y);
  }
  /// max(x - y, 0) on unsigned indices.
  Value subSat(Value x, Value y) { return select(ult(y, x), sub(x, y), idx(0)); }
  Value ceilDiv(Value x, int64_t y) { return div(add(x, y - 1), y); }
  Value fadd(Value x, Value y) { return b.create<mlir::arith::AddFOp>(x, y); }
  Value fmul(Value x, Value y) { return b.create<mlir::arith::MulFOp>(x, y); }
  Value fsub(Value x, Value y) { return b.create<mlir::arith::SubFOp>(x, y); }
  Value fmax(Value x, Value y) { return b.create<mlir::arith::MaximumFOp>(x, y); }
  // ex2.approx / lg2.approx / fma.rn through NVVM and LLVM intrinsics:
  // math.exp2 and math.log2 would become libdevice calls (__nv_exp2f),
  // which need the CUDA toolkit's libdevice at compile time.
  Value nvvmUnary(const char *intrinsic, Value x) {
    return b.create<mlir::LLVM::CallIntrinsicOp>(mlir::TypeRange{f32}, intrinsic,
                                           mlir::ValueRange{x})
        .getResult(0);
  }
  Value exp2(Value x) { return nvvmUnary("llvm.nvvm.ex2.approx.f", x); }
  Value log2(Value x) { return nvvmUnary("llvm.nvvm.lg2.approx.f", x); }
  Value fma(Value x, Value y, Value z) {
    return b.create<mlir::LLVM::FMAOp>(x, y, z);
  }

  Value shuffleXor(Value v, int offset) {
    return b.create<mlir::gpu::ShuffleOp>(v, offset, 32, mlir::gpu::ShuffleMode::XOR)
        .getShuffleResult();
  }
  Value c32(int64_t v) {
    return b.create<mlir::arith::ConstantOp>(b.getI32IntegerAttr(int32_t(v)));
  }
  Value i32of(Value index) { return b.create<mlir::arith::IndexCastUIOp>(i32, index); }
  Value indexOf(Value v32) {
    return b.create<mlir::arith::IndexCastUIOp>(b.getIndexType(), v32);
  }
  /// An i32 (signed) as an index.
  Value indexOfSigned(Value v32) {
    return b.create<mlir::arith::IndexCastOp>(b.getIndexType(), v32);
  }
};

/// A module holding one gpu.module, in a context of its own with the
/// dialects the kernels use; errors reported in it are collected. Kernels
/// are added with addKernel() and built with builder(); ptx() verifies,
/// prints (mlirText) and lowers the whole module (gpu -> nvvm -> LLVM's
/// NVPTX back end, sm_80) to PTX text.
class GpuKernelModule {
public:
  /// `what` names the kernels in errors ("tensor-core attention").
  GpuKernelModule(const std::string &gpuModuleName, std::string what);
  ~GpuKernelModule();
  mlir::ImplicitLocOpBuilder &builder() { return *b_; }
  /// A kernel taking `args` (1-D memrefs and indices) with at most
  /// `threads` threads per block; the builder is left at its entry block.
  mlir::gpu::GPUFuncOp addKernel(const std::string &name,
                                 llvm::ArrayRef<mlir::Type> args, int threads);
  /// A 1-D memref of `t` (a kernel buffer parameter).
  mlir::Type buffer(mlir::Type t);
  /// Verifies, keeps the MLIR text in `mlirText`, lowers, and returns the
  /// PTX (no trailing NUL), checking that every kernel has its .entry.
  /// Throws std::runtime_error with one line naming `what`.
  std::string ptx();
  std::string mlirText;

private:
  struct State;
  std::unique_ptr<State> state_;
  mlir::ImplicitLocOpBuilder *b_;
  std::string what_;
  std::vector<std::string> kernels_;
};

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_TENSORCORE_GPUKERNELBUILDER_H
