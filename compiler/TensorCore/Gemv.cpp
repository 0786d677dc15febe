//===- Gemv.cpp - a graph matmul of a few rows, four output columns a warp -===//
//
// C = A B^T for a projection with a 16-bit weight when A has a few rows
// (decode: one token per sequence; issue #14, stage 4): A f32 [M, K], B
// bf16/f16 [N, K] (nn.Linear's weight layout), C f32 [M, N], f32
// accumulation. The GEMM's 128-row tiles would be mostly padding, and the
// work is bound by reading B once, so this is a matrix-vector product in
// the way of cuBLAS's and llama.cpp's GEMV kernels ("gemv-v2"):
//   - a CTA of kGemvWarps warps; warp w owns the kGemvColumnsPerWarp
//     output columns from (blockIdx.x * kGemvWarps + w) * 4 (columns past
//     N read column N - 1 and are not stored);
//   - a warp step covers 256 elements of the depth: lane l reads 16 bytes
//     (8 elements) of each of its columns' weight rows from element 8 l
//     (coalesced 512-byte warp loads, through the read-only path) and the
//     same 8 floats of each row of A, which all four columns share;
//   - why four columns: with one column a warp, Nsight Compute on the H200
//     showed the kernel bound by L1 (91% of L1/TEX throughput, DRAM at
//     27%): each 16-byte weight load came with 32 bytes of A per row of A.
//     Four columns read A once for 64 bytes of weight, and put four
//     weight loads in flight per lane; two steps are issued together;
//   - K is static, so the steps are a loop of whole pairs, the remaining
//     whole step, and a masked tail step of K mod 256 elements;
//   - rows of A go rowsPerPass (at most 4) at a time (rows past M read row
//     M - 1 and are not stored); a kernel for more than one row per pass
//     also holds a one-row pass, taken when M is 1 at run time (decode
//     through a prefill module's GEMV), so that one row never pays the
//     loads of four;
//   - each lane keeps one f32 sum per (row, column); the warp sums its
//     lanes with xor shuffles and lane 0 stores.
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
constexpr int64_t kCols = ptx_abi::kGemvColumnsPerWarp;
constexpr int64_t kVec = 8;          ///< weight elements per lane load
constexpr int64_t kStep = 32 * kVec; ///< elements per warp step
constexpr int64_t kUnroll = 2;       ///< warp steps issued together

class GemvBuilder : GpuKernelBuilder {
public:
  GemvBuilder(ImplicitLocOpBuilder &b, Type elem, int64_t k, int64_t n, int64_t rows)
      : GpuKernelBuilder(b), elem(elem), K(k), N(n), kRows(rows) {}

  void build(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    a = e.getArgument(0), w = e.getArgument(1), c = e.getArgument(2), m = e.getArgument(3);
    Value tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    lane = rem(tid, 32);
    Value warp = div(tid, 32);
    col0 = mul(add(mul(bid(gpu::Dimension::x), kWarps), warp), kCols);
    ifThen(ult(col0, idx(N)), [&] {
      for (int64_t j = 0; j < kCols; ++j)
        wRow.push_back(mul(minu(add(col0, j), idx(N - 1)), K));
      if (kRows == 1) {
        passes(1);
        return;
      }
      auto one = b.create<scf::IfOp>(ult(m, idx(2)), /*withElse=*/true);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(&one.getThenRegion().front());
      passes(1);
      b.setInsertionPointToStart(&one.getElseRegion().front());
      passes(kRows);
    });
    b.create<gpu::ReturnOp>();
  }

private:
  /// The passes over the weight, `rows` rows of A each.
  void passes(int64_t rows) {
    auto vec4 = VectorType::get({4}, f32);
    auto vec8 = VectorType::get({8}, f32);
    auto pass = b.create<scf::ForOp>(idx(0), m, idx(rows));
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(pass.getBody());
    Value r0 = pass.getInductionVar(), lastRow = sub(m, 1);
    std::vector<Value> aRow;
    for (int64_t r = 0; r < rows; ++r)
      aRow.push_back(mul(minu(add(r0, r), lastRow), K));
    Value zero8 = b.create<arith::ConstantOp>(DenseElementsAttr::get(vec8, 0.0f));
    // acc[r * kCols + j]: row r, column j.
    SmallVector<Value> acc(size_t(rows * kCols), f32c(0));
    // `count` warp steps from element k0: every weight load first (count
    // x kCols in flight per lane), then per row A's 8 floats and the FMAs
    // of every column; `valid`, if set, masks the lanes past K.
    auto steps = [&](Value k0, int64_t count, Value valid) {
      std::vector<Value> wv;
      for (int64_t u = 0; u < count; ++u)
        for (int64_t j = 0; j < kCols; ++j)
          wv.push_back(loadReadOnly16(w, add(wRow[size_t(j)], add(k0, u * kStep))));
      for (int64_t u = 0; u < count; ++u) {
        Value at = add(k0, u * kStep);
        std::vector<Value> wf;
        for (int64_t j = 0; j < kCols; ++j) {
          Value x = widen16Vec(wv[size_t(u * kCols + j)], elem);
          wf.push_back(valid ? select(valid, x, zero8) : x);
        }
        for (int64_t r = 0; r < rows; ++r) {
          Value ar = add(aRow[size_t(r)], at);
          Value lo = loadGlobal(a, ar, vec4, 4, 16), hi = loadGlobal(a, add(ar, 4), vec4, 4, 16);
          Value av = b.create<vector::ShuffleOp>(lo, hi, ArrayRef<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
          for (int64_t j = 0; j < kCols; ++j) {
            Value &s = acc[size_t(r * kCols + j)];
            for (int64_t e = 0; e < kVec; ++e)
              s = fma(b.create<vector::ExtractOp>(av, ArrayRef<int64_t>{e}),
                      b.create<vector::ExtractOp>(wf[size_t(j)], ArrayRef<int64_t>{e}), s);
          }
        }
      }
    };
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
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < kCols; ++j) {
        Value s = acc[size_t(r * kCols + j)];
        for (int off = 16; off >= 1; off /= 2)
          s = fadd(s, shuffleXor(s, off));
        Value row = add(r0, r), col = add(col0, j);
        ifThen(land(land(ult(row, m), ult(col, idx(N))), ult(lane, idx(1))),
               [&] { storeGlobal(s, c, add(mul(row, N), col), 4, 4); });
      }
  }

  Type elem;
  const int64_t K, N;
  const int64_t kRows; ///< rows of A per pass over the weight
  Value a, w, c, m, lane, col0;
  std::vector<Value> wRow; ///< each column's weight row offset
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
  return gm.kernel(function, int(kThreads), rowsPerPass, 0, "gemv-v2");
}

} // namespace deltaflow::compiler
