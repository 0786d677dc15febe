//===- Gemm.cpp - a graph matmul on mma.sync tensor-core tiles, built in MLIR ===//
//
// C = A B^T for a projection with a 16-bit weight (issue #14, stage 4): A
// f32 [M, K] (the activations, rounded to the weight's type as they are
// staged), B bf16/f16 [N, K] (nn.Linear's weight layout, y = x W^T: rows
// contiguous in the depth), C f32 [M, N], f32 accumulation. The standard
// shared-memory GEMM on mma.sync.m16n8k16 (PTX ISA, "Warp-level matrix
// multiply-accumulate"; the structure of CUTLASS's sm80 multistage GEMM
// with two stages):
//   - a CTA computes a kBlockM x kGemmBlockN tile of C with 8 warps in a
//     2 x 4 grid; a warp owns 64 x 32 outputs as 4 x 4 m16n8 accumulators
//     (64 f32 per lane);
//   - the depth advances kGemmBlockK at a time through two shared-memory
//     stages: B by cp.async (16 bytes per copy), A by 16-byte global loads
//     into registers issued one step ahead, rounded and stored after the
//     step's mma (register double buffering);
//   - fragments come from ldmatrix.x4 (A: 16 x 16; B: two n8 x k16);
//     shared rows are padded to kGemmBlockK + 8 elements (80 bytes), so the
//     eight rows of an ldmatrix phase fall in eight distinct bank groups;
//   - rows of A past M read row M - 1 (rows are independent) and their C
//     rows are not stored: no branch in the main loop.
// One barrier per depth step.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <stdexcept>

using namespace mlir;
namespace manifest = deltaflow::manifest;

namespace deltaflow::compiler {

namespace {

constexpr int64_t kBlockM = 128, kBlockN = ptx_abi::kGemmBlockN,
                  kBlockK = ptx_abi::kGemmBlockK;
constexpr int64_t kThreads = 256, kWarpsM = 2, kWarpsN = 4;
constexpr int64_t kWarpM = kBlockM / kWarpsM, kWarpN = kBlockN / kWarpsN;
constexpr int64_t kMTiles = kWarpM / 16, kNTiles = kWarpN / 8;
/// Shared row pitch in elements: 80 bytes, a multiple of 16 (cp.async,
/// ldmatrix) that is an odd number of 16-byte units.
constexpr int64_t kPitch = kBlockK + 8;
constexpr int64_t kStageElems = (kBlockM + kBlockN) * kPitch;
/// A's f32 float4 loads per thread per step.
constexpr int64_t kALoads = kBlockM * kBlockK / 4 / kThreads;
constexpr int64_t kBCopies = kBlockN * kBlockK / 8 / kThreads;
static_assert(kALoads * 4 * kThreads == kBlockM * kBlockK, "A tile split");
static_assert(kBCopies * 8 * kThreads == kBlockN * kBlockK, "B tile split");

class GemmBuilder : GpuKernelBuilder {
public:
  GemmBuilder(ImplicitLocOpBuilder &b, Type elem, int64_t k, int64_t n)
      : GpuKernelBuilder(b), elem(elem), K(k), N(n) {}

  void build(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    Value a = e.getArgument(0), w = e.getArgument(1), c = e.getArgument(2),
          m = e.getArgument(3);
    smem = workgroup(dynamicShared(), elem, 2 * kStageElems, 0);
    tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    Value lane = rem(tid, 32), warp = div(tid, 32);
    Value n0 = mul(bid(gpu::Dimension::x), kBlockN);
    Value m0 = mul(bid(gpu::Dimension::y), kBlockM);
    Value lastRow = sub(m, 1);
    // This thread's A loads: element offsets at depth 0 and the shared
    // offsets within a stage.
    std::vector<Value> aFrom, aTo;
    for (int64_t i = 0; i < kALoads; ++i) {
      Value q = add(tid, i * kThreads);
      Value r = div(q, kBlockK / 4), col = mul(rem(q, kBlockK / 4), 4);
      aFrom.push_back(add(mul(minu(add(m0, r), lastRow), K), col));
      aTo.push_back(add(mul(r, kPitch), col));
    }
    auto vec4 = VectorType::get({4}, f32);
    auto loadA = [&](Value k0) {
      std::vector<Value> regs;
      for (Value from : aFrom)
        regs.push_back(loadGlobal(a, add(from, k0), vec4, 4, 16));
      return regs;
    };
    auto storeA = [&](const std::vector<Value> &regs, Value stage) {
      Value base = mul(stage, kStageElems);
      for (size_t i = 0; i < regs.size(); ++i)
        b.create<vector::StoreOp>(
            b.create<arith::TruncFOp>(VectorType::get({4}, elem), regs[i]), smem,
            ValueRange{add(base, aTo[i])});
    };
    auto copyB = [&](Value k0, Value stage) {
      Value base = add(mul(stage, kStageElems), kBlockM * kPitch);
      for (int64_t i = 0; i < kBCopies; ++i) {
        Value q = add(tid, i * kThreads);
        Value r = div(q, kBlockK / 8), col = mul(rem(q, kBlockK / 8), 8);
        cpAsync16(smem, add(base, add(mul(r, kPitch), col)), w,
                  add(mul(add(n0, r), K), add(k0, col)));
      }
      b.create<NVVM::CpAsyncCommitGroupOp>();
    };

    // Prologue: step 0 into stage 0.
    copyB(idx(0), idx(0));
    storeA(loadA(idx(0)), idx(0));
    b.create<NVVM::CpAsyncWaitGroupOp>(0u);
    b.create<gpu::BarrierOp>();

    // Per-lane ldmatrix rows: A rows (lane mod 16) at column (lane / 16) 8;
    // B rows (lane / 16) 8 + lane mod 8 at column ((lane / 8) mod 2) 8.
    Value warpRow = mul(div(warp, kWarpsN), kWarpM);
    Value warpCol = mul(rem(warp, kWarpsN), kWarpN);
    Value aLane = add(mul(add(warpRow, rem(lane, 16)), kPitch), mul(div(lane, 16), 8));
    Value bLane = add(mul(add(warpCol, add(mul(div(lane, 16), 8), rem(lane, 8))), kPitch),
                      mul(rem(div(lane, 8), 2), 8));

    const int64_t nK = K / kBlockK, nAcc = kMTiles * kNTiles * 4;
    SmallVector<Value> init(size_t(nAcc), f32c(0.0));
    auto loop = b.create<scf::ForOp>(idx(0), idx(nK), idx(1), init);
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(loop.getBody());
      Value kt = loop.getInductionVar();
      Value stage = rem(kt, 2), next = sub(idx(1), stage);
      Value kNext = mul(minu(add(kt, 1), idx(nK - 1)), kBlockK);
      ifThen(ult(add(kt, 1), idx(nK)), [&] { copyB(kNext, next); });
      std::vector<Value> ahead = loadA(kNext);
      auto args = loop.getRegionIterArgs();
      std::vector<std::array<Value, 4>> acc(size_t(kMTiles * kNTiles));
      for (int64_t t = 0; t < kMTiles * kNTiles; ++t)
        for (int64_t j = 0; j < 4; ++j)
          acc[size_t(t)][size_t(j)] = args[size_t(t * 4 + j)];
      Value aBase = add(mul(stage, kStageElems), aLane);
      Value bBase = add(add(mul(stage, kStageElems), kBlockM * kPitch), bLane);
      for (int64_t kk = 0; kk < kBlockK / 16; ++kk) {
        std::vector<std::array<Value, 4>> af, bf;
        for (int64_t mt = 0; mt < kMTiles; ++mt)
          af.push_back(ldmatrixX4(elem, smem, add(aBase, mt * 16 * kPitch + kk * 16), false));
        for (int64_t np = 0; np < kNTiles / 2; ++np)
          bf.push_back(ldmatrixX4(elem, smem, add(bBase, np * 16 * kPitch + kk * 16), false));
        for (int64_t mt = 0; mt < kMTiles; ++mt)
          for (int64_t nt = 0; nt < kNTiles; ++nt) {
            const auto &bq = bf[size_t(nt / 2)];
            size_t at = size_t(mt * kNTiles + nt);
            acc[at] = mmaM16N8K16(elem, af[size_t(mt)], bq[size_t(nt % 2) * 2],
                                  bq[size_t(nt % 2) * 2 + 1], acc[at]);
          }
      }
      storeA(ahead, next);
      b.create<NVVM::CpAsyncWaitGroupOp>(0u);
      b.create<gpu::BarrierOp>();
      SmallVector<Value> yield;
      for (const auto &t : acc)
        yield.append(t.begin(), t.end());
      b.create<scf::YieldOp>(yield);
    }

    // Epilogue: each lane's pairs (row lane / 4 and + 8, columns 2 (lane
    // mod 4) + {0, 1}) as 8-byte stores, rows below M only.
    auto vec2 = VectorType::get({2}, f32);
    Value rowLane = add(add(m0, warpRow), div(lane, 4));
    Value colLane = add(add(n0, warpCol), mul(rem(lane, 4), 2));
    for (int64_t mt = 0; mt < kMTiles; ++mt)
      for (int64_t half = 0; half < 2; ++half) {
        Value row = add(rowLane, mt * 16 + half * 8);
        ifThen(ult(row, m), [&] {
          for (int64_t nt = 0; nt < kNTiles; ++nt) {
            size_t at = size_t((mt * kNTiles + nt) * 4 + half * 2);
            Value v = b.create<vector::FromElementsOp>(
                vec2, ValueRange{loop.getResult(at), loop.getResult(at + 1)});
            storeGlobal(v, c, add(mul(row, N), add(colLane, nt * 8)), 4, 8);
          }
        });
      }
    b.create<gpu::ReturnOp>();
  }

private:
  Type elem;
  const int64_t K, N;
  Value smem, tid;
};

} // namespace

std::string gemmUnsupported(manifest::DType weight, int64_t k, int64_t n) {
  if (weight != manifest::DType::BFloat16 && weight != manifest::DType::Float16)
    return std::string("a ") + manifest::toString(weight) +
           " weight (the kernel takes bfloat16 or float16)";
  if (k <= 0 || k % kBlockK != 0)
    return "depth " + std::to_string(k) + " (a multiple of " +
           std::to_string(kBlockK) + ")";
  if (n <= 0 || n % kBlockN != 0)
    return std::to_string(n) + " output columns (a multiple of " +
           std::to_string(kBlockN) + ")";
  return "";
}

int64_t gemmSharedBytes() { return 2 * kStageElems * 2; }

PtxKernel buildTensorCoreGemm(manifest::DType weight, int64_t k, int64_t n,
                              const std::string &function) {
  if (std::string why = gemmUnsupported(weight, k, n); !why.empty())
    throw std::runtime_error("no tensor-core GEMM for " + why);
  GpuKernelModule gm(function + "_module", "tensor-core GEMM");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = weight == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                  : Type(b.getF16Type());
  SmallVector<Type> args = {gm.buffer(b.getF32Type()), gm.buffer(elem),
                            gm.buffer(b.getF32Type()), b.getIndexType()};
  GemmBuilder(b, elem, k, n).build(gm.addKernel(function, args, int(kThreads)));
  return gm.kernel(function, int(kThreads), kBlockM, gemmSharedBytes(), "gemm-v1");
}

} // namespace deltaflow::compiler
