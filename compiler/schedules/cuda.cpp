//===- cuda.cpp - attention schedules for NVIDIA GPUs (Halide CUDA) --------===//
//
// Prefill: one thread block per (query tile of 4 rows, 2 for G = 8; KV
// head), 32 x rows threads; the key-block loop runs serially inside the
// block. Each block of 64 keys is staged in shared memory (coalesced reads,
// padded transposed rows); scores are register tiles of 2 keys x G heads per
// thread; row max/sum by 32 lanes; P.V keeps dv/32 value lanes x G heads per
// thread in registers. The online (acc, max, sum) state stays in global
// memory.
// Decode: split-K, one block per (key chunk, KV head), 128 x G threads.
// q.k with 32 head-dim lanes per key row (coalesced reads of K, G partial
// dots per lane in registers, summed through padded shared memory); chunk
// max/sum by 32 lanes per head; P.V by value lanes over key slices (one
// load of V feeds G FMAs). A second kernel merges the chunks by LSE, one
// block per (head, KV head) with the accumulators in registers.
// The selections' dense stages use scheduleGpuLaneDots/LaneReduce too
// (compiler/Halide/Selection/); their top-k runs on the host.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Targets.h"

#include <optional>
#include <stdexcept>
#include <string>

namespace deltaflow::compiler {

namespace {
constexpr int kLanes = 32; // a warp: the lanes of one key row or reduction
} // namespace

void scheduleGpuLaneDots(Halide::Func dot, Halide::RVar rd, Halide::Var key,
                         Halide::Var head, const Halide::LoopLevel &at,
                         const std::vector<Halide::VarOrRVar> &between) {
  using Halide::RVar;
  using Halide::Var;
  RVar rdo("rdo"), rdi("rdi");
  Var u("u"), jo("jo"), jr("jr"), jx("jx"), jy("jy"), ux("ux");
  Halide::Func lanesDot = dot.update().split(rd, rdo, rdi, kLanes).rfactor(rdi, u);
  // Each thread accumulates its lane's partials in registers (lanesDot) and
  // stores them once (lanesShared); x = 32 lanes x 4 keys, y = 4 keys.
  Halide::Func lanesShared = lanesDot.in(dot);
  std::vector<Halide::VarOrRVar> order = {head, u, jx, jy};
  order.insert(order.end(), between.begin(), between.end());
  order.push_back(jo);
  lanesShared.compute_at(at)
      .reorder_storage(u, key, head)
      .align_storage(u, kLanes + 1)
      .split(key, jo, jr, 16)
      .split(jr, jy, jx, 4)
      .reorder(order)
      .fuse(u, jx, ux)
      .gpu_threads(ux, jy)
      .unroll(head)
      .unroll(jo);
  lanesDot.compute_at(lanesShared, ux).unroll(head);
  lanesDot.update().reorder(head, rdo).unroll(head).unroll(rdo);
  dot.update().unroll(rdi);
}

void scheduleGpuLaneReduce(Halide::Func f, Halide::RVar r,
                           const Halide::LoopLevel &at, Halide::Var head,
                           std::optional<Halide::Var> row) {
  Halide::RVar ro("ro"), ri("ri");
  Halide::Var w("w");
  Halide::Func partial = f.update().split(r, ro, ri, kLanes).rfactor(ri, w);
  std::vector<Halide::VarOrRVar> pure = {head, w}, upd = {head, ro, w};
  if (row) {
    pure.push_back(*row);
    upd.push_back(*row);
  }
  partial.compute_at(at).reorder(pure).unroll(head);
  partial.update().reorder(upd).unroll(head);
  if (row) {
    partial.gpu_threads(w, *row);
    partial.update().gpu_threads(w, *row);
    f.compute_at(at).gpu_threads(head, *row);
    f.update().gpu_threads(head, *row);
  } else {
    partial.gpu_threads(w);
    partial.update().gpu_threads(w);
    f.compute_at(at).gpu_threads(head);
    f.update().gpu_threads(head);
  }
}

namespace {
/// The GPU schedules put G (query heads per KV head) and the value lanes on
/// threads and keep per-head scores in shared memory; beyond G = 8 a block
/// would need more than 1024 threads or 48 KiB.
int gpuGroupSize(const AttentionSpec &spec) {
  const int G = int(spec.hq / spec.hkv);
  if (G > 8 || spec.dv > 128 || spec.d > 256 || spec.d % 32 || spec.dv % 32)
    throw UnsupportedShape(
        "the GPU attention schedules support up to 8 query heads per KV head, "
        "head dims that are multiples of 32 up to 256, and value dims up to "
        "128; got " +
        std::to_string(spec.hq) + " query heads over " + std::to_string(spec.hkv) +
        " KV heads, head dim " + std::to_string(spec.d) + ", value dim " +
        std::to_string(spec.dv));
  return G;
}
} // namespace

static PrefillTiles prefillTilesCuda(const Halide::Target &t, const AttentionSpec &spec) {
  PrefillTiles tiles;
  // 4 query rows x G heads per block (2 rows for G > 4), 64-key blocks: the
  // key tile (D x 65 words), scores and probabilities fit the 48 KiB of
  // shared memory a Halide 14 kernel may use.
  const int G = gpuGroupSize(spec);
  tiles.queryTile = tile(t, "prefill.query-tile", G <= 4 ? 4 : 2);
  tiles.keyBlock = tile(t, "prefill.key-block", spec.d <= 128 ? 64 : 32);
  tiles.skipUnusedRowTiles = false; // miscompiles on the GPU backends
  return tiles;
}

static DecodeTiles decodeTilesCuda(const Halide::Target &t, const AttentionSpec &spec) {
  DecodeTiles tiles;
  // 1024 keys per block: 128 chunks x 8 KV heads at 128K. On the H100,
  // 128K keys: 0.48 ms at 1024, 0.50 at 512 (bench/gpu/tune.py); 2048 needs more
  // than 48 KiB of shared memory (scores and probabilities: 2 x C x G words;
  // lane partials: 33 x dotBlock x G words). G = 8 takes smaller blocks.
  const int G = gpuGroupSize(spec);
  tiles.keyChunk = tile(t, "decode.key-chunk", G <= 4 ? 1024 : 128);
  tiles.dotBlock = tile(t, "decode.dot-block", G <= 4 ? 32 : 16);
  return tiles;
}

static void schedulePrefillCuda(PrefillPipeline &P, const AttentionSpec &spec,
                         const Halide::Target &) {
  using Halide::RVar;
  using Halide::Var;
  const int G = int(spec.hq / spec.hkv);
  const int Tq = P.tiles.queryTile, Bk = P.tiles.keyBlock;
  const int lanes = kLanes;
  RVar rb(P.rb.x);

  // One block per (query tile, KV head); threads (32 lanes, Tq rows). Each
  // thread keeps dv/32 value lanes x G heads of the online state; the state
  // lives in global memory (L1/L2), the per-block partials in registers.
  Var eo("eo"), ei("ei");
  P.state.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.qi, 0, Tq)
      .bound(P.g, 0, G)
      .split(P.e, eo, ei, lanes)
      .reorder(eo, P.g, ei, P.qi, P.qt, P.hk, P.b)
      .gpu_blocks(P.qt, P.hk)
      .gpu_threads(ei, P.qi)
      .unroll(eo)
      .unroll(P.g);
  P.state.update()
      .split(P.e, eo, ei, lanes)
      .reorder(eo, P.g, ei, P.qi, rb, P.qt, P.hk, P.b)
      .gpu_blocks(P.qt, P.hk)
      .gpu_threads(ei, P.qi)
      .unroll(eo)
      .unroll(P.g);
  Halide::LoopLevel perBlock(P.state, rb);

  Var jo("jo"), jx("jx"), jr("jr"), jy("jy"), dq("dq"), dl("dl");
  if (P.form.kind == PrefillForm::Sparse)
    P.kidx.compute_at(perBlock).split(P.jj, jo, jx, lanes).gpu_threads(jx).unroll(jo);

  // The block's keys staged in shared memory: warps read key rows
  // coalesced (lanes over the head dim) and store them transposed, [d][key]
  // with a row of Bk + 1 words, so that neither these stores nor the score
  // threads' reads (lanes over keys) share a bank.
  P.kt.compute_at(perBlock)
      .reorder_storage(P.jj, P.d)
      .align_storage(P.jj, Bk + 1)
      .split(P.d, dq, dl, lanes)
      .split(P.jj, jr, jy, Tq)
      .reorder(dq, jr, dl, jy)
      .gpu_threads(dl, jy)
      .unroll(dq)
      .unroll(jr, 4);

  // Scores: each thread 2 adjacent keys x G heads of one row, in registers.
  // Scores and probabilities share one thread layout.
  auto keyPairs = [&](Halide::Func f) {
    f.compute_at(perBlock)
        .split(P.jj, jx, jo, 2)
        .reorder(P.g, jo, jx, P.qi)
        .gpu_threads(jx, P.qi)
        .unroll(P.g)
        .unroll(jo);
  };
  P.qT.compute_inline();
  keyPairs(P.s);
  P.sdot.compute_at(P.s, jx).unroll(P.g).unroll(P.jj);
  P.sdot.update().reorder(P.g, P.jj, P.rd).unroll(P.g).unroll(P.jj);

  // Row max and sum: 32 lanes x Tq rows reduce Bk/32 keys each (all G
  // heads), then one thread per (head, row) reduces the lanes.
  auto laneReduce = [&](Halide::Func f) {
    scheduleGpuLaneReduce(f, RVar(P.rj.x), perBlock, P.g, P.qi);
  };
  laneReduce(P.bmax);
  keyPairs(P.p);
  laneReduce(P.bsum);

  // P.V in registers: dv/32 value lanes x G heads per thread; V rows are
  // read coalesced (lanes over the value dim), probabilities broadcast.
  P.bpv.compute_at(P.state, ei).unroll(P.e).unroll(P.g);
  P.bpv.update().reorder(P.e, P.g, P.rjNonFinite.x).unroll(P.e).unroll(P.g);

  P.out.compute_root().gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
  Halide::Var io("io"), ii("ii");
  if (P.lse.defined())
    P.lse.compute_root()
        .split(P.i, io, ii, 64, Halide::TailStrategy::GuardWithIf)
        .gpu_blocks(io, P.h)
        .gpu_threads(ii);
}

static void scheduleDecodeCuda(DecodePipeline &P, const AttentionSpec &spec,
                        const Halide::Target &) {
  using Halide::RVar;
  using Halide::Var;
  const int G = int(spec.hq / spec.hkv);
  const int Bd = P.tiles.dotBlock; // keys whose q.k partials share memory
  Halide::RVar rc(P.rc.x);

  // One block per (key chunk, KV head); one thread per (value lane, head).
  P.part.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.g, 0, G)
      .reorder(P.e, P.g, P.i, P.c, P.hk, P.b)
      .gpu_blocks(P.c, P.hk)
      .gpu_threads(P.e, P.g);
  Halide::LoopLevel perChunk(P.part, P.c);
  P.qd.compute_at(perChunk).gpu_threads(P.d, P.g);

  // q.k: the head dim is split over 32 lanes so that a warp reads a key row
  // with consecutive addresses (coalesced); each lane keeps G partial dots
  // (one load of K feeds G FMAs). Partials of Bd keys go to shared memory,
  // padded to 33 words per row so that neither the lanes' writes nor the
  // per-key sums read the same bank.
  Var jo("jo"), ji("ji");
  P.s.compute_at(perChunk)
      .split(P.jj, jo, ji, Bd)
      .reorder(ji, P.g, P.i, jo)
      .gpu_threads(ji, P.g);
  P.sdot.compute_at(P.s, ji);
  scheduleGpuLaneDots(P.sdot, RVar(P.rd.x), P.jj, P.g, Halide::LoopLevel(P.s, jo),
                      {P.i});

  // Chunk max and sum: 32 lanes per head each reduce C/32 keys, then one
  // thread per head reduces the 32 lanes.
  auto laneReduce = [&](Halide::Func f) {
    scheduleGpuLaneReduce(f, RVar(P.rj.x), perChunk, P.g);
  };
  laneReduce(P.cmax);
  Var po("po"), pi("pi");
  P.p.compute_at(perChunk)
      .split(P.jj, po, pi, 128)
      .reorder(pi, P.g, P.i, po)
      .gpu_threads(pi, P.g);
  laneReduce(P.csum);

  // P.V: lanes over the value dim read V rows coalesced; four key slices
  // (threads y) each sum every fourth key for all G heads in registers, so
  // one load of V feeds G FMAs, with 8 keys in flight per thread.
  {
    RVar ko("ko"), ki("ki"), koo("koo"), koi("koi");
    Var ks("ks");
    // Four slices (two for G = 8, to stay within 48 KiB of shared memory).
    const int nSlices = G <= 4 ? 4 : 2;
    Halide::Func slices =
        P.cpv.update().split(P.rj, ko, ki, nSlices).rfactor(ki, ks);
    Halide::Func slicesShared = slices.in(P.cpv);
    slicesShared.compute_at(perChunk)
        .reorder(P.g, P.e, ks)
        .gpu_threads(P.e, ks)
        .unroll(P.g);
    slices.compute_at(slicesShared, P.e).unroll(P.g);
    slices.update()
        .split(ko, koo, koi, 8)
        .reorder(P.g, koi, koo)
        .unroll(P.g)
        .unroll(koi);
    P.cpv.compute_at(perChunk).gpu_threads(P.e, P.g);
    P.cpv.update().gpu_threads(P.e, P.g);
  }

  // Merge of the chunks, fused into the normalisation: one block per (head
  // in group, KV head, row), one thread per value lane keeping its (acc, l)
  // in registers over the chunks (8 in flight); the chunk max is reduced by
  // 32 lanes first. `out` only lays the heads out.
  {
    P.outG.compute_root().gpu_blocks(P.g, P.hk, P.i).gpu_threads(P.e);
    RVar co("co"), ci("ci"), lo("lo"), li("li");
    Var w("w");
    P.merged.compute_at(P.outG, P.e);
    // (The LSE's copies of gmax and merged are made before the rfactors.)
    Halide::Func mergedL, gmaxL;
    if (P.lse.defined()) {
      mergedL = P.merged.clone_in(P.lseG);
      gmaxL = P.gmax.clone_in({P.lseG, mergedL});
      mergedL.update()
          .split(rc, co, ci, 8, Halide::TailStrategy::GuardWithIf)
          .unroll(ci);
    }
    // Four chunk slices per value lane (threads y), each in registers, 4
    // chunks in flight; then each lane adds its 4 slices.
    {
      RVar so("so"), si("si"), soo("soo"), soi("soi");
      Var ks("ks");
      Halide::Func slices =
          P.merged.update()
              .split(rc, so, si, 4, Halide::TailStrategy::GuardWithIf)
              .rfactor(si, ks);
      Halide::Func slicesShared = slices.in(P.merged);
      slicesShared.compute_at(P.outG, P.g).gpu_threads(P.e, ks);
      slices.compute_at(slicesShared, P.e);
      slices.update()
          .split(so, soo, soi, 4, Halide::TailStrategy::GuardWithIf)
          .unroll(soi);
    }
    Halide::Func partial =
        P.gmax.update()
            .split(rc, lo, li, kLanes, Halide::TailStrategy::GuardWithIf)
            .rfactor(li, w);
    partial.compute_at(P.outG, P.g).gpu_threads(w);
    partial.update().reorder(lo, w).gpu_threads(w);
    P.gmax.compute_at(P.outG, P.g).gpu_threads(P.g);
    P.gmax.update().gpu_threads(P.g);
    // The LSE: its own copy of the merge, one thread per head (no barriers).
    if (P.lse.defined()) {
      P.lseG.compute_root().gpu_blocks(P.hk, P.i).gpu_threads(P.g);
      gmaxL.compute_at(P.lseG, P.g);
      mergedL.compute_at(P.lseG, P.g);
      P.lse.compute_root().gpu_blocks(P.i, P.h);
    }
  }
  P.out.compute_root().gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
}

static void scheduleDeltaCorrectCuda(DeltaPipeline &P, int64_t dv) {
  P.out.gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(dv));
}

// --- The selection kernels' shared stages on GPUs ---------------------------
namespace {
using Halide::Func;
using Halide::Var;

/// GPU targets: the scores are the one stage that reads K, so they run on
/// the device and only the scores ([candidates, G, Hkv] per chunk) travel
/// to the host stages, not K. Same shape as the CUDA decode q.k: one block
/// per 32 keys and KV head; 32 head-dim lanes per key row (coalesced), G
/// partial dots per lane in registers, summed through shared memory padded
/// to 33 words per row.
void scheduleCandidateScoresGpu(CandidateScores &cs, const SelectionBuild &sb) {
  using Halide::RVar;
  const int G = sb.groupSize();
  const int keys = 32;
  Var h = cs.qbar.args()[1], c = cs.qbar.args()[2], d = cs.qbar.args()[0];
  cs.qbar.compute_root().gpu_blocks(h, c).gpu_threads(d);
  cs.scores.compute_root()
      .bound(cs.g, 0, G)
      .split(cs.j, cs.jb, cs.ji, keys, Halide::TailStrategy::GuardWithIf)
      .reorder(cs.g, cs.ji, cs.jb, cs.hk, cs.c, cs.b)
      .gpu_blocks(cs.jb, cs.hk, cs.c)
      .gpu_threads(cs.ji)
      .unroll(cs.g);
  cs.dot.compute_at(cs.scores, cs.ji).unroll(cs.g);
  scheduleGpuLaneDots(cs.dot, RVar(cs.rd.x), cs.j, cs.g,
                      Halide::LoopLevel(cs.scores, cs.jb));
}

void scheduleHeadSoftmaxGpu(HeadSoftmax &hs, CandidateScores &cs,
                            const SelectionBuild &) {
  // The scores are on the device: each head's max and sum over the
  // candidates there too, by 1024 threads per (head, chunk) that stride
  // over the candidates (coalesced), then one thread per head.
  for (Func *f : {&hs.max, &hs.sum}) {
    Halide::RVar ro("ro"), ri("ri");
    Var w("w");
    Halide::RVar r(hs.candidates.x);
    Func partial = f->update(0)
                       .split(r, ro, ri, 1024, Halide::TailStrategy::GuardWithIf)
                       .rfactor(ri, w);
    partial.compute_root()
        .reorder(w, cs.g, cs.hk, cs.c)
        .gpu_blocks(cs.g, cs.hk, cs.c)
        .gpu_threads(w);
    partial.update()
        .reorder(ro, w, cs.g, cs.hk, cs.c)
        .gpu_blocks(cs.g, cs.hk, cs.c)
        .gpu_threads(w);
    f->compute_root().gpu_blocks(cs.g, cs.hk, cs.c);
    for (int u = 0; u < f->num_update_definitions(); ++u)
      f->update(u).gpu_blocks(cs.g, cs.hk, cs.c);
  }
  if (hs.keptScore.defined()) { // small: one thread per kept key
    hs.keptScore.compute_root().gpu_blocks(cs.hk, cs.c).gpu_threads(hs.keptScore.args()[0]);
    hs.keptScore.update().gpu_blocks(cs.hk, cs.c).gpu_threads(hs.keptScore.args()[0]);
    hs.keptSum.compute_root().gpu_blocks(cs.g, cs.hk, cs.c);
    hs.keptSum.update().gpu_blocks(cs.g, cs.hk, cs.c);
    hs.keptShare.compute_root();
  }
}

/// One thread per candidate, its sum in registers.
void scheduleOverCandidatesGpu(Func f, const Var &j,
                               const std::vector<Halide::RVar> &,
                               const Halide::Target &) {
  Var jo("jo"), ji("ji");
  f.compute_root()
      .split(j, jo, ji, 256, Halide::TailStrategy::GuardWithIf)
      .gpu_blocks(jo)
      .gpu_threads(ji);
  f.update()
      .split(j, jo, ji, 256, Halide::TailStrategy::GuardWithIf)
      .gpu_blocks(jo)
      .gpu_threads(ji);
}
} // namespace

void registerGpuTargets() {
  TargetFamily f;
  f.name = "gpu";
  f.targets = {
      // Halide 14's newest CUDA capability; the driver JIT-compiles the PTX
      // for newer GPUs (sm_90 on an H100). Host code is x86-64.
      {"cuda", "x86-64-linux-sse41-avx-f16c-fma-avx2-cuda-cuda_capability_86",
       "c++", "NVIDIA GPUs through CUDA: bf16/f16 attention on tensor cores "
       "(MLIR NVGPU -> PTX, sm_80+), fp32 kernels from Halide 14"},
      // The GPU schedules through OpenCL: CI runs them on the CPU with pocl
      // to catch indexing and barrier bugs without a GPU.
      {"opencl", "x86-64-linux-sse41-avx-f16c-fma-avx2-opencl", "c++",
       "the GPU schedules through OpenCL (CI runs them on pocl)"}};
  f.tiles = {
      {"prefill.query-tile", "query rows per block (4 for G <= 4, else 2)", 1, 64},
      {"prefill.key-block", "keys per shared-memory block (64 for D <= 128, else 32)", 1, 1024},
      {"decode.key-chunk", "keys per split-K block (1024 for G <= 4, else 128)", 1, 1 << 20},
      {"decode.dot-block", "keys per lane-dot block (32 for G <= 4, else 16)", 1, 1024},
      // bf16/f16 attention (compiler/TensorCore): not Halide schedules.
      {"tensorcore.warps", "bf16/f16 attention: warps per block, 16 query rows each (8 for D <= 128, else 4)", 1, 8},
      {"tensorcore.key-tile", "bf16/f16 attention: keys per K/V tile, a multiple of 16 (64 for D <= 128, else 32)", 16, 256},
      {"tensorcore.address-bits", "bf16/f16 attention: shared-memory address arithmetic, 32 or 64 bits (32)", 32, 64},
      {"tensorcore.decode-rows", "bf16/f16 dense attention: query rows up to which the split-K decode kernels run instead of the tile (4; 0: never; each split CTA serves one row, so K/V are read once per row)", 0, 16},
      {"tensorcore.decode-keys-per-step", "bf16/f16 decode: K/V rows each lane group loads per step, 1, 2, 4 or 8 (4 for G <= 4, else 2)", 1, 8},
      {"tensorcore.decode-prefetch", "bf16/f16 decode: 1 issues the next step's K/V loads before this step's arithmetic, 0 after (1)", 0, 1},
      {"tensorcore.rows-warps", "bf16/f16 Delta rows (attn.dense_rows): warps per block, 16 rows each (4)", 1, 8},
      {"tensorcore.rows-key-tile", "bf16/f16 Delta rows: keys per K/V tile, a multiple of 16 dividing 256 (64 for D <= 128, else 32)", 16, 256},
      {"tensorcore.gemm", "matmuls by a bf16/f16 nn.Linear weight: 1 runs them on the tensor-core GEMM (from 16 rows on), 0 in Halide's f32 SIMT kernels (cuda: 1; opencl: 0, and 1 splits the kernels as cuda does, all in Halide)", 0, 1}};
  f.claims = [](const Halide::Target &t) { return t.has_gpu_feature(); };
  f.prefillTiles = prefillTilesCuda;
  f.decodeTiles = decodeTilesCuda;
  f.schedulePrefill = schedulePrefillCuda;
  f.scheduleDecode = scheduleDecodeCuda;
  f.scheduleDelta = [](DeltaPipeline &p, int64_t dv, const Halide::Target &) {
    scheduleDeltaCorrectCuda(p, dv);
  };
  f.selection = {scheduleCandidateScoresGpu, scheduleHeadSoftmaxGpu,
                 scheduleOverCandidatesGpu};
  f.scheduleGraph = scheduleGraphGpu;
  f.graphSmallRowsLimit = graphSmallRowsLimitGpu;
  f.sparseDecode = false; // sparse decode runs the prefill form (one row)
  f.bitWidenF16 = false;  // GPUs convert f16 natively
  registerTargetFamily(std::move(f));
}

} // namespace deltaflow::compiler
