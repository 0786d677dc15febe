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

#include "deltaflow/Common/SparseGeometry.h"
#include "deltaflow/Compiler/TensorCore.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <array>
#include <cmath>
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

  Value bid(mlir::gpu::Dimension d) { return b.create<mlir::gpu::BlockIdOp>(d); }
  Value negInf() { return f32c(-INFINITY); }
  Value lds(Value mem, Value at) {
    return b.create<mlir::memref::LoadOp>(mem, mlir::ValueRange{at});
  }
  void sts(Value v, Value mem, Value at) {
    b.create<mlir::memref::StoreOp>(v, mem, mlir::ValueRange{at});
  }
  /// The kernel's dynamic shared memory (bytes).
  Value dynamicShared() {
    return b.create<mlir::gpu::DynamicSharedMemoryOp>(mlir::MemRefType::get(
        {mlir::ShapedType::kDynamic}, b.getI8Type(), mlir::AffineMap(),
        mlir::gpu::AddressSpaceAttr::get(b.getContext(),
                                         mlir::gpu::AddressSpace::Workgroup)));
  }
  /// `n` elements of `t` of dynamic shared memory `dyn` from `byteOffset`.
  Value workgroup(Value dyn, mlir::Type t, int64_t n, int64_t byteOffset) {
    return b.create<mlir::memref::ViewOp>(
        mlir::MemRefType::get({n}, t, mlir::AffineMap(),
                              mlir::gpu::AddressSpaceAttr::get(
                                  b.getContext(), mlir::gpu::AddressSpace::Workgroup)),
        dyn, idx(byteOffset), mlir::ValueRange{});
  }
  /// scf.if with no results; the body is built by `then`.
  template <typename F> void ifThen(Value cond, F then) {
    auto op = b.create<mlir::scf::IfOp>(cond, /*withElse=*/false);
    mlir::OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  }
  /// The reference a softmax's exponents are taken against: its running
  /// max m, or 0 while m is -inf (no key yet), so that exp2(x - ref) is 0
  /// for masked keys instead of NaN. A +inf or NaN m propagates.
  Value softmaxRef(Value m) {
    Value isInf = b.create<mlir::arith::CmpFOp>(mlir::arith::CmpFPredicate::OEQ,
                                                m, negInf());
    return select(isInf, f32c(0), m);
  }
  /// attn.dense_rows' row layout for `nq` query rows (common/include/
  /// deltaflow/Common/SparseGeometry.h): `strided` rows 0, s, 2s, ...,
  /// then this call's `tail` (the prompt's last nq mod s + max(128, s)
  /// rows less the `rowsAfter` that later calls hold, within [0, nq]), in
  /// `rows` = strided + deltaExtraRows(s) reserved rows per head.
  struct DeltaRows {
    Value strided, tail, rows;
  };
  DeltaRows deltaRows(Value nq, Value rowsAfter, int64_t stride) {
    Value strided = ceilDiv(nq, stride);
    Value span = add(rem(nq, stride), ::deltaflow::geometry::deltaTailSpan(stride));
    Value tail = minu(subSat(span, rowsAfter), nq);
    return {strided, tail, add(strided, ::deltaflow::geometry::deltaExtraRows(stride))};
  }
  /// The query row that Δ's row `r` computes (valid for r < strided +
  /// tail): r s for the strided rows, then nq - tail + (r - strided).
  Value deltaQueryRow(const DeltaRows &g, Value nq, Value r, int64_t stride) {
    return select(ult(r, g.strided), mul(r, stride),
                  add(sub(nq, g.tail), sub(r, g.strided)));
  }
  /// (m, l) of two softmax partials in the log2 domain, merged.
  std::pair<Value, Value> mergeStats(Value m1, Value l1, Value m2, Value l2) {
    Value m = fmax(m1, m2);
    Value ref = softmaxRef(m);
    return {m, fadd(fmul(l1, exp2(fsub(m1, ref))), fmul(l2, exp2(fsub(m2, ref))))};
  }
  /// A 16-byte vector of a global buffer of `elemBytes`-byte elements at
  /// element `at` (16-byte aligned): one ld.global.v4 (vector.load of MLIR
  /// 19 takes the element's alignment and becomes one load per element).
  Value loadAligned16(Value mem, Value at, mlir::VectorType ty, int64_t elemBytes = 2) {
    return loadGlobal(mem, at, ty, elemBytes, 16);
  }
  /// A value of type `ty` at element `at` of a global buffer of
  /// `elemBytes`-byte elements, `alignment`-byte aligned: one ld.global.
  Value loadGlobal(Value mem, Value at, mlir::Type ty, int64_t elemBytes, unsigned alignment) {
    return b.create<mlir::LLVM::LoadOp>(ty, globalPtr(mem, at, elemBytes), alignment);
  }
  /// Stores `v` at element `at` of a global buffer (as loadGlobal).
  void storeGlobal(Value v, Value mem, Value at, int64_t elemBytes, unsigned alignment) {
    b.create<mlir::LLVM::StoreOp>(v, globalPtr(mem, at, elemBytes), alignment);
  }
  /// Stores the 16-byte vector `v` at element `at` (16-byte aligned) of a
  /// global buffer of `elemBytes`-byte elements: one st.global.v4.
  void storeAligned16(Value v, Value mem, Value at, int64_t elemBytes = 2) {
    storeGlobal(v, mem, at, elemBytes, 16);
  }
  /// loadAligned16 through the read-only path as one opaque instruction
  /// (inline PTX `ld.global.nc.v4.b32`), for buffers the kernel never
  /// writes; the 16 bytes as vector<4xi32> (widen16 unpacks 16-bit floats).
  /// LLVM cannot merge such loads: InstCombine folds a phi of two plain
  /// loads into one load of a phi'd address, which undoes register double
  /// buffering (loads of the next step issued before this step's
  /// arithmetic).
  Value loadReadOnly16(Value mem, Value at, int64_t elemBytes = 2) {
    mlir::Type i32 = b.getI32Type();
    auto words = mlir::LLVM::LLVMStructType::getLiteral(b.getContext(), {i32, i32, i32, i32});
    auto asmOp = b.create<mlir::LLVM::InlineAsmOp>(
        words, mlir::ValueRange{globalPtr(mem, at, elemBytes)},
        "ld.global.nc.v4.b32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,l",
        /*has_side_effects=*/false, /*is_align_stack=*/false,
        mlir::LLVM::AsmDialectAttr{}, mlir::ArrayAttr{});
    auto vec4 = mlir::VectorType::get({4}, i32);
    Value r = b.create<mlir::LLVM::UndefOp>(vec4);
    for (int64_t w = 0; w < 4; ++w)
      r = b.create<mlir::LLVM::InsertElementOp>(
          r, b.create<mlir::LLVM::ExtractValueOp>(asmOp.getResult(0), w),
          b.create<mlir::LLVM::ConstantOp>(i32, b.getI32IntegerAttr(int32_t(w))));
    return r;
  }
  /// The 8 16-bit floats of 4 words (element 2w in the low half of word w,
  /// as a 16-byte load leaves them), widened to f32 scalars. bf16 widens on
  /// the bits, two integer ops per word (low half << 16, high half & ~0xffff),
  /// instead of an unpack, a zero-extension and a shift per element.
  std::vector<Value> widen16(Value words, mlir::Type elem) {
    std::vector<Value> r;
    mlir::Type i32 = b.getI32Type();
    if (elem.isBF16()) {
      for (int64_t w = 0; w < 4; ++w) {
        Value x = b.create<mlir::LLVM::ExtractElementOp>(
            words, b.create<mlir::LLVM::ConstantOp>(i32, b.getI32IntegerAttr(int32_t(w))));
        r.push_back(b.create<mlir::arith::BitcastOp>(
            f32, b.create<mlir::arith::ShLIOp>(x, i32c(16))));
        r.push_back(b.create<mlir::arith::BitcastOp>(
            f32, b.create<mlir::arith::AndIOp>(x, i32c(int32_t(0xffff0000u)))));
      }
      return r;
    }
    auto vecE = mlir::VectorType::get({8}, elem);
    Value h = b.create<mlir::LLVM::BitcastOp>(vecE, words);
    for (int64_t e = 0; e < 8; ++e) {
      Value x = b.create<mlir::vector::ExtractOp>(h, mlir::ArrayRef<int64_t>{e});
      r.push_back(b.create<mlir::arith::ExtFOp>(f32, x));
    }
    return r;
  }
  /// widen16 as one vector<8xf32>.
  Value widen16Vec(Value words, mlir::Type elem) {
    Value vec = b.create<mlir::LLVM::UndefOp>(mlir::VectorType::get({8}, f32));
    std::vector<Value> w = widen16(words, elem);
    for (int64_t e = 0; e < 8; ++e)
      vec = b.create<mlir::vector::InsertOp>(w[size_t(e)], vec, mlir::ArrayRef<int64_t>{e});
    return vec;
  }

  // --- tensor cores (mma.sync.m16n8k16, PTX ISA "Warp-level matrix
  // multiply-accumulate"); `elem` is bf16 or f16 ----------------------------
  /// ldmatrix x4 (optionally .trans) of 16-bit `elem` from the workgroup
  /// memref `smem` at element `offset` (this lane's row address): four
  /// b16x2 registers as i32.
  std::array<Value, 4> ldmatrixX4(mlir::Type elem, Value smem, Value offset, bool trans) {
    auto ty = mlir::VectorType::get({4, 2}, elem);
    Value frag = b.create<mlir::nvgpu::LdMatrixOp>(ty, smem, mlir::ValueRange{offset},
                                                   trans, 4u);
    std::array<Value, 4> regs;
    for (int i = 0; i < 4; ++i)
      regs[size_t(i)] = packed(b.create<mlir::vector::ExtractOp>(frag, llvm::ArrayRef<int64_t>{i}));
    return regs;
  }
  /// cp.async of 16 bytes (8 16-bit elements) from element `srcAt` of the
  /// global memref `src` to element `dstAt` of the workgroup memref `dst`,
  /// bypassing L1 (cp.async.cg); both 16-byte aligned.
  void cpAsync16(Value dst, Value dstAt, Value src, Value srcAt) {
    b.create<mlir::nvgpu::DeviceAsyncCopyOp>(
        mlir::nvgpu::DeviceAsyncTokenType::get(b.getContext()), dst,
        mlir::ValueRange{dstAt}, src, mlir::ValueRange{srcAt}, b.getIndexAttr(8),
        /*srcElements=*/Value(), /*bypassL1=*/b.getUnitAttr());
  }
  /// A vector<2 x elem> as one 32-bit register.
  Value packed(Value v2) {
    Value v = b.create<mlir::vector::BitCastOp>(mlir::VectorType::get({1}, i32), v2);
    return b.create<mlir::vector::ExtractOp>(v, llvm::ArrayRef<int64_t>{0});
  }
  /// Two f32 rounded to `elem` and packed into one register.
  Value packPair(mlir::Type elem, Value x, Value y) {
    Value v = b.create<mlir::vector::FromElementsOp>(mlir::VectorType::get({2}, f32),
                                                     mlir::ValueRange{x, y});
    return packed(b.create<mlir::arith::TruncFOp>(mlir::VectorType::get({2}, elem), v));
  }
  /// D = A B + C for one m16n8k16 tile (row-major A, column-major B, f32
  /// C and D). The NVVM intrinsic through llvm.call_intrinsic: MLIR 19's
  /// nvgpu.mma.sync and nvvm.mma.sync have no bf16 m16n8k16 case.
  std::array<Value, 4> mmaM16N8K16(mlir::Type elem, const std::array<Value, 4> &a,
                                   Value b0, Value b1, const std::array<Value, 4> &c) {
    bool bf16 = elem.isBF16();
    llvm::SmallVector<Value> args;
    auto operand = [&](Value r) {
      // The f16 intrinsic takes <2 x half>; bf16 takes the packed i32.
      if (bf16)
        return r;
      return Value(b.create<mlir::LLVM::BitcastOp>(mlir::VectorType::get({2}, elem), r));
    };
    for (Value r : a)
      args.push_back(operand(r));
    args.push_back(operand(b0));
    args.push_back(operand(b1));
    args.append(c.begin(), c.end());
    auto structTy = mlir::LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                           {f32, f32, f32, f32});
    Value d = b.create<mlir::LLVM::CallIntrinsicOp>(
                   mlir::TypeRange{structTy},
                   bf16 ? "llvm.nvvm.mma.m16n8k16.row.col.bf16"
                        : "llvm.nvvm.mma.m16n8k16.row.col.f32.f32",
                   args)
                  .getResult(0);
    std::array<Value, 4> out;
    for (int i = 0; i < 4; ++i)
      out[size_t(i)] = b.create<mlir::LLVM::ExtractValueOp>(d, llvm::ArrayRef<int64_t>{i});
    return out;
  }

private:
  /// A global-memory (address space 1) pointer to element `at` of `mem`.
  Value globalPtr(Value mem, Value at, int64_t elemBytes) {
    Value base = b.create<mlir::memref::ExtractAlignedPointerAsIndexOp>(mem);
    Value addr = add(base, mul(at, elemBytes));
    Value i64v = b.create<mlir::arith::IndexCastUIOp>(b.getI64Type(), addr);
    return b.create<mlir::LLVM::IntToPtrOp>(
        mlir::LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/1), i64v);
  }
};

/// The LSE merge of split-K partials (compiler/TensorCore/Decode.cpp):
/// decode-v1's `<prefix>_merge` for `deltaStride` 0, dense-rows-v1's for
/// Δ's rows (a trailing rowsAfter parameter; unused rows written as 0).
void buildLseMerge(mlir::ImplicitLocOpBuilder &b, mlir::gpu::GPUFuncOp fn,
                   const manifest::AttentionParams &spec, int64_t deltaStride);

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
  /// The lowered module as a PtxKernel (sm_80) with this launch shape.
  PtxKernel kernel(const std::string &function, int threads, int64_t rowsPerBlock,
                   int64_t sharedBytes, const std::string &abi = "");
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
