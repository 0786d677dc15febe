//===- DeltaCorrect.cpp - Δ's combination for 16-bit rows, built in MLIR ---===//
//
// attn.delta_correct on the GPU for bf16/f16 outputs (Delta Attention;
// docs/design.md, "Δ-correction"): with m = i / s, row i of the result is
//   sparse[i] + rows[m] - sparse[m s],
// except the rows of this call's tail (the prompt's last rows, computed
// densely), which are the dense rows as they are. The f32 sum is rounded
// to the output type once. A CTA holds kDeltaCorrectThreads / (D / 8) rows
// of one (query head, batch); each lane reads and writes 8 consecutive
// elements with 16-byte accesses. The row layout is attn.dense_rows'
// (GpuKernelBuilder::deltaRows).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <stdexcept>

using namespace mlir;
namespace manifest = deltaflow::manifest;

namespace deltaflow::compiler {

namespace {

class DeltaCorrectBuilder : GpuKernelBuilder {
public:
  DeltaCorrectBuilder(ImplicitLocOpBuilder &b, Type elem, int64_t d, int64_t stride)
      : GpuKernelBuilder(b), elem(elem), D(d), stride(stride) {}

  /// Rows per CTA: kDeltaCorrectThreads / (D / 8) lanes of 8 elements.
  static int64_t rowsPerBlock(int64_t d) { return kDeltaCorrectThreads / (d / 8); }

  void build(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    Value sparse = e.getArgument(0), rows = e.getArgument(1), out = e.getArgument(2),
          nq = e.getArgument(3), rowsAfter = e.getArgument(4);
    const int64_t lanes = D / 8, perBlock = rowsPerBlock(D);
    Value tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    Value rr = div(tid, lanes), col = mul(rem(tid, lanes), 8);
    Value i = add(mul(bid(gpu::Dimension::x), perBlock), rr);
    Value h = bid(gpu::Dimension::y), bb = bid(gpu::Dimension::z);
    Value heads = b.create<gpu::GridDimOp>(gpu::Dimension::y);
    DeltaRows g = deltaRows(nq, rowsAfter, stride);
    Value head = add(mul(bb, heads), h);
    ifThen(land(ult(rr, idx(perBlock)), ult(i, nq)), [&] {
      Value tail0 = sub(nq, g.tail);
      Value inTail = b.create<arith::CmpIOp>(arith::CmpIPredicate::uge, i, tail0);
      Value m = div(i, stride);
      // Element offsets of the lane's 8 elements: sparse rows i and m s,
      // dense row m, or the tail's dense row strided + (i - tail0).
      Value sRow = add(mul(add(mul(head, nq), i), D), col);
      Value sAnchor = add(mul(add(mul(head, nq), mul(m, stride)), D), col);
      Value rRow = add(mul(add(mul(head, g.rows),
                               select(inTail, add(g.strided, sub(i, tail0)), m)),
                           D),
                       col);
      auto vecE = VectorType::get({8}, elem), vecF = VectorType::get({8}, f32);
      auto load = [&](Value mem, Value at) {
        return b.create<arith::ExtFOp>(vecF, loadAligned16(mem, at, vecE));
      };
      Value dense = load(rows, rRow);
      auto branch = b.create<scf::IfOp>(TypeRange{vecF}, inTail, true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(&branch.getThenRegion().front());
        b.create<scf::YieldOp>(dense);
        b.setInsertionPointToStart(&branch.getElseRegion().front());
        Value x = b.create<arith::SubFOp>(
            b.create<arith::AddFOp>(load(sparse, sRow), dense), load(sparse, sAnchor));
        b.create<scf::YieldOp>(x);
      }
      storeAligned16(b.create<arith::TruncFOp>(vecE, branch.getResult(0)), out, sRow);
    });
    b.create<gpu::ReturnOp>();
  }

private:
  Type elem;
  const int64_t D, stride;
};

} // namespace

std::string deltaCorrectUnsupported(manifest::DType dtype, int64_t d, int64_t stride) {
  if (dtype != manifest::DType::BFloat16 && dtype != manifest::DType::Float16)
    return std::string("element type ") + manifest::toString(dtype) +
           " (the kernel takes bfloat16 or float16)";
  if (d < 8 || d % 8 != 0 || d > 8 * kDeltaCorrectThreads)
    return "head dim " + std::to_string(d) + " (a multiple of 8 up to " +
           std::to_string(8 * kDeltaCorrectThreads) + ")";
  if (stride < 1)
    return "stride " + std::to_string(stride) + " (must be >= 1)";
  return "";
}

PtxKernel buildDeltaCorrect(manifest::DType dtype, int64_t d, int64_t stride,
                            const std::string &function) {
  if (std::string why = deltaCorrectUnsupported(dtype, d, stride); !why.empty())
    throw std::runtime_error("no delta-correct kernel for " + why);
  GpuKernelModule gm(function + "_module", "delta-correct");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                 : Type(b.getF16Type());
  SmallVector<Type> args = {gm.buffer(elem), gm.buffer(elem), gm.buffer(elem),
                            b.getIndexType(), b.getIndexType()};
  DeltaCorrectBuilder(b, elem, d, stride)
      .build(gm.addKernel(function, args, kDeltaCorrectThreads));
  return gm.kernel(function, kDeltaCorrectThreads, DeltaCorrectBuilder::rowsPerBlock(d),
                   0, "delta-correct-v1");
}

} // namespace deltaflow::compiler
