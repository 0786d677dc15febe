//===- DeltaCorrect.cpp - Δ's combination for 16-bit rows, built in MLIR ---===//
//
// attn.delta_correct on the GPU for bf16/f16 outputs (Delta Attention;
// docs/design.md, "Δ-correction"): with m = i / s, row i of the result is
//   sparse[i] + rows[m] - sparse[m s],
// except the rows of this call's tail (the prompt's last rows, computed
// densely), which are the dense rows as they are. The f32 sum is rounded
// to the output type once. One CTA per (row, query head, batch); thread t
// writes elements t, t + kDeltaCorrectThreads, ... of the row. The row
// layout is attn.dense_rows' (GpuKernelBuilder::deltaRows).
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

  void build(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    Value sparse = e.getArgument(0), rows = e.getArgument(1), out = e.getArgument(2),
          nq = e.getArgument(3), rowsAfter = e.getArgument(4);
    Value tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    Value i = bid(gpu::Dimension::x), h = bid(gpu::Dimension::y),
          bb = bid(gpu::Dimension::z);
    Value heads = b.create<gpu::GridDimOp>(gpu::Dimension::y);
    DeltaRows g = deltaRows(nq, rowsAfter, stride);
    Value head = add(mul(bb, heads), h);
    Value tail0 = sub(nq, g.tail);
    Value inTail = b.create<arith::CmpIOp>(arith::CmpIPredicate::uge, i, tail0);
    Value m = div(i, stride);
    // Element offsets of the row's sources: sparse row i and m s, dense
    // row m, or the tail's dense row strided + (i - tail0).
    Value sRow = mul(add(mul(head, nq), i), D);
    Value sAnchor = mul(add(mul(head, nq), mul(m, stride)), D);
    Value rRow = mul(add(mul(head, g.rows),
                         select(inTail, add(g.strided, sub(i, tail0)), m)),
                     D);
    auto load = [&](Value mem, Value at) {
      return b.create<arith::ExtFOp>(f32, lds(mem, at));
    };
    for (int64_t e0 = 0; e0 < D; e0 += kDeltaCorrectThreads) {
      Value el = add(tid, e0);
      ifThen(ult(el, idx(D)), [&] {
        Value dense = load(rows, add(rRow, el));
        auto branch = b.create<scf::IfOp>(TypeRange{f32}, inTail, true);
        {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(&branch.getThenRegion().front());
          b.create<scf::YieldOp>(dense);
          b.setInsertionPointToStart(&branch.getElseRegion().front());
          Value x = fsub(fadd(load(sparse, add(sRow, el)), dense),
                         load(sparse, add(sAnchor, el)));
          b.create<scf::YieldOp>(x);
        }
        sts(b.create<arith::TruncFOp>(elem, branch.getResult(0)), out,
            add(sRow, el));
      });
    }
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
  if (d < 1 || d > 2 * kDeltaCorrectThreads)
    return "head dim " + std::to_string(d) + " (1 to " +
           std::to_string(2 * kDeltaCorrectThreads) + ")";
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
  PtxKernel k;
  k.function = function;
  k.threads = kDeltaCorrectThreads;
  k.rowsPerBlock = 1;
  k.computeCapability = 80;
  k.abi = "delta-correct-v1";
  k.ptx = gm.ptx();
  k.mlir = gm.mlirText;
  return k;
}

} // namespace deltaflow::compiler
