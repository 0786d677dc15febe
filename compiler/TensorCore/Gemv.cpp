//===- Gemv.cpp - a graph matmul of a few rows, one warp per output column ===//
//
// C = A B^T for a projection with a 16-bit weight when A has a few rows
// (decode: one token per sequence; issue #14, stage 4): A f32 [M, K], B
// bf16/f16 [N, K] (nn.Linear's weight layout), C f32 [M, N], f32
// accumulation. The GEMM's 128-row tiles would be mostly padding, and the
// work is bound by reading B once, so this is a matrix-vector product in
// the way of cuBLAS's and llama.cpp's GEMV kernels:
//   - a CTA of kGemvWarps warps; warp w owns output column
//     n = blockIdx.x * kGemvWarps + w (columns past N return at once);
//   - its lanes read the column's weight row 16 bytes (8 elements) at a
//     time, lane l from element 8 l in steps of 256 elements (coalesced
//     512-byte warp loads, through the read-only path), widened to f32;
//     kUnroll steps' loads are issued before their FMAs, so each lane has
//     kUnroll 16-byte loads in flight (one, at 37% of the copy bandwidth
//     on the H200, left the memory system idle between steps); K is
//     static, so the steps are a loop of whole groups, the remaining whole
//     steps, and a masked tail step;
//   - rows of A go rowsPerPass (at most 4) at a time (rows past M read
//     row M - 1 and are not stored), so the weight is read
//     ceil(M / rowsPerPass) times, once in
//     decode; A's 8 floats per row come as two 16-byte loads;
//   - each lane keeps 8 partial sums per row, adds them, and the warp sums
//     its lanes with xor shuffles; lane 0 stores the row's element.
// No shared memory and no barrier.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <stdexcept>

using namespace mlir;
namespace manifest = deltaflow::manifest;

namespace deltaflow::compiler {

namespace {

constexpr int64_t kWarps = ptx_abi::kGemvWarps, kThreads = kWarps * 32;
constexpr int64_t kVec = 8;         ///< weight elements per lane load
constexpr int64_t kStep = 32 * kVec; ///< elements per warp step
constexpr int64_t kUnroll = 4;      ///< warp steps whose loads are in flight together

class GemvBuilder : GpuKernelBuilder {
public:
  GemvBuilder(ImplicitLocOpBuilder &b, Type elem, int64_t k, int64_t n, int64_t rows)
      : GpuKernelBuilder(b), elem(elem), K(k), N(n), kRows(rows) {}

  void build(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    Value a = e.getArgument(0), w = e.getArgument(1), c = e.getArgument(2),
          m = e.getArgument(3);
    Value tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    Value lane = rem(tid, 32), warp = div(tid, 32);
    Value col = add(mul(bid(gpu::Dimension::x), kWarps), warp);
    ifThen(ult(col, idx(N)), [&] {
      Value lastRow = sub(m, 1);
      Value wRow = mul(col, K);
      auto vec4 = VectorType::get({4}, f32);
      auto vec8 = VectorType::get({8}, f32);
      auto pass = b.create<scf::ForOp>(idx(0), m, idx(kRows));
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(pass.getBody());
      Value r0 = pass.getInductionVar();
      std::vector<Value> aRow;
      for (int64_t r = 0; r < kRows; ++r)
        aRow.push_back(mul(minu(add(r0, r), lastRow), K));
      Value zero = b.create<arith::ConstantOp>(DenseElementsAttr::get(vec8, 0.0f));
      SmallVector<Value> acc(size_t(kRows), zero);
      // `count` warp steps from element k0 (the loads of all of them are
      // issued before their FMAs, so that `count` weight loads are in
      // flight per lane); `valid`, if set, masks the lanes past K.
      auto steps = [&](Value k0, int64_t count, Value valid) {
        std::vector<Value> wv;
        for (int64_t u = 0; u < count; ++u)
          wv.push_back(loadReadOnly16(w, add(wRow, add(k0, u * kStep))));
        for (int64_t u = 0; u < count; ++u) {
          Value at = add(k0, u * kStep);
          Value wf = widen16Vec(wv[size_t(u)], elem);
          if (valid)
            wf = select(valid, wf, zero);
          for (int64_t r = 0; r < kRows; ++r) {
            Value ar = add(aRow[size_t(r)], at);
            Value lo = loadGlobal(a, ar, vec4, 4, 16), hi = loadGlobal(a, add(ar, 4), vec4, 4, 16);
            Value av = b.create<vector::ShuffleOp>(lo, hi, ArrayRef<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
            acc[size_t(r)] = b.create<vector::FMAOp>(av, wf, acc[size_t(r)]);
          }
        }
      };
      // K is static: kFull whole warp steps (kUnroll at a time in a loop,
      // the rest straight-line), then a tail step of K mod kStep elements
      // for the lanes below it (the others read element 0 and add zero).
      Value kLane = mul(lane, kVec);
      const int64_t full = K / kStep, groups = full / kUnroll, tail = K % kStep;
      if (groups > 0) {
        auto loop = b.create<scf::ForOp>(idx(0), idx(groups * kUnroll * kStep),
                                         idx(kUnroll * kStep), acc);
        OpBuilder::InsertionGuard gl(b);
        b.setInsertionPointToStart(loop.getBody());
        acc.assign(loop.getRegionIterArgs().begin(), loop.getRegionIterArgs().end());
        steps(add(loop.getInductionVar(), kLane), kUnroll, nullptr);
        b.create<scf::YieldOp>(acc);
        b.setInsertionPointAfter(loop);
        acc.assign(loop.getResults().begin(), loop.getResults().end());
      }
      if (int64_t rest = full - groups * kUnroll; rest > 0)
        steps(add(kLane, groups * kUnroll * kStep), rest, nullptr);
      if (tail > 0) {
        Value valid = ult(kLane, idx(tail));
        steps(add(select(valid, kLane, idx(0)), full * kStep), 1, valid);
      }
      for (int64_t r = 0; r < kRows; ++r) {
        Value s = b.create<vector::ReductionOp>(vector::CombiningKind::ADD,
                                                acc[size_t(r)]);
        for (int off = 16; off >= 1; off /= 2)
          s = fadd(s, shuffleXor(s, off));
        Value row = add(r0, r);
        ifThen(land(ult(row, m), ult(lane, idx(1))),
               [&] { storeGlobal(s, c, add(mul(row, N), col), 4, 4); });
      }
    });
    b.create<gpu::ReturnOp>();
  }

private:
  Type elem;
  const int64_t K, N;
  const int64_t kRows; ///< rows of A per pass over the weight
};

} // namespace

std::string gemvUnsupported(manifest::DType weight, int64_t k, int64_t n) {
  if (weight != manifest::DType::BFloat16 && weight != manifest::DType::Float16)
    return std::string("a ") + manifest::toString(weight) +
           " weight (the kernel takes bfloat16 or float16)";
  if (k <= 0 || k % kVec != 0)
    return "depth " + std::to_string(k) + " (a multiple of " + std::to_string(kVec) + ")";
  if (n <= 0)
    return std::to_string(n) + " output columns";
  return "";
}

PtxKernel buildGemv(manifest::DType weight, int64_t k, int64_t n, const std::string &function,
                    int64_t rowsPerPass) {
  if (std::string why = gemvUnsupported(weight, k, n); !why.empty())
    throw std::runtime_error("no GEMV for " + why);
  if (rowsPerPass < 1 || rowsPerPass > kGemvMaxRowsPerPass)
    throw std::invalid_argument("buildGemv: " + std::to_string(rowsPerPass) +
                                " rows per pass (1 to " +
                                std::to_string(kGemvMaxRowsPerPass) + ")");
  GpuKernelModule gm(function + "_module", "GEMV");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = weight == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                  : Type(b.getF16Type());
  SmallVector<Type> args = {gm.buffer(b.getF32Type()), gm.buffer(elem),
                            gm.buffer(b.getF32Type()), b.getIndexType()};
  GemvBuilder(b, elem, k, n, rowsPerPass).build(gm.addKernel(function, args, int(kThreads)));
  return gm.kernel(function, int(kThreads), rowsPerPass, 0, "gemv-v1");
}

} // namespace deltaflow::compiler
