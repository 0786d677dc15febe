//===- cuda.cpp - attention schedules for NVIDIA GPUs (Halide CUDA) --------===//
//
// Prefill: one thread block per (query tile, KV head). The key-block loop
// runs serially inside the block; each block of Bk keys is staged through
// shared memory: scores with one thread per key, softmax statistics with one
// thread per (row, head), P.V with one thread per value lane. The online
// (acc, max, sum) state of the tile stays with the block.
// Decode: split-K, one block per (key chunk, KV head); one thread per key for
// q.k, one per value lane for P.V; a second kernel merges chunks by LSE.
// Selections stay on the host (they are scans), feeding the GPU kernels.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/Schedule.h"

namespace deltaflow::compiler {

PrefillTiles prefillTilesCuda(const Halide::Target &, const AttentionSpec &) {
  PrefillTiles tiles;
  tiles.queryTile = 8; // 8 rows x 128 value lanes = 1024 threads
  tiles.keyBlock = 64;  // scores and probabilities: 2 x 16 KiB of shared memory (G = 4)
  tiles.skipUnusedRowTiles = false; // miscompiles on the GPU backends
  return tiles;
}

DecodeTiles decodeTilesCuda(const Halide::Target &, const AttentionSpec &) {
  DecodeTiles tiles;
  tiles.keyChunk = 1024;
  return tiles;
}

void schedulePrefillCuda(PrefillPipeline &P, const AttentionSpec &spec,
                         const Halide::Target &) {
  using Halide::RVar;
  const int G = int(spec.hq / spec.hkv);
  const int Tq = P.tiles.queryTile;
  Halide::RVar rb(P.rb.x);

  P.state.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.qi, 0, Tq)
      .bound(P.g, 0, G)
      .reorder(P.e, P.qi, P.g, P.qt, P.hk, P.b)
      .gpu_blocks(P.qt, P.hk)
      .gpu_threads(P.e, P.qi);
  P.state.update()
      .reorder(P.e, P.qi, P.g, rb, P.qt, P.hk, P.b)
      .gpu_blocks(P.qt, P.hk)
      .gpu_threads(P.e, P.qi);
  Halide::LoopLevel perBlock(P.state, rb);

  // Shared memory holds the block's scores and probabilities (2 x 16 KiB);
  // queries are read through the cache, P.V accumulates in registers.
  P.qT.compute_inline();
  if (P.form.kind == PrefillForm::Sparse) {
    P.kidx.compute_at(perBlock).gpu_threads(P.jj);
  }
  // Scores: one thread per key of the block, all rows and heads of the tile.
  P.s.compute_at(perBlock).reorder(P.jj, P.qi, P.g).gpu_threads(P.jj, P.qi);
  P.sdot.compute_at(P.s, P.jj);
  P.bmax.compute_at(perBlock).gpu_threads(P.qi, P.g);
  P.bmax.update().gpu_threads(P.qi, P.g);
  P.p.compute_at(perBlock).reorder(P.jj, P.qi, P.g).gpu_threads(P.jj, P.qi);
  P.bsum.compute_at(perBlock).gpu_threads(P.qi, P.g);
  P.bsum.update().gpu_threads(P.qi, P.g);
  P.bpv.compute_at(P.state, P.e);

  // One block per output row, one thread per value lane.
  P.out.compute_root().gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
  Halide::Var io("io"), ii("ii");
  if (P.lse.defined())
    P.lse.compute_root()
        .split(P.i, io, ii, 64, Halide::TailStrategy::GuardWithIf)
        .gpu_blocks(io, P.h)
        .gpu_threads(ii);
}

void scheduleDecodeCuda(DecodePipeline &P, const AttentionSpec &spec,
                        const Halide::Target &) {
  const int G = int(spec.hq / spec.hkv);
  Halide::RVar rc(P.rc.x);
  P.part.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.g, 0, G)
      .reorder(P.e, P.g, P.i, P.c, P.hk, P.b)
      .gpu_blocks(P.c, P.hk)
      .gpu_threads(P.e);
  P.qd.compute_at(P.part, P.c).gpu_threads(P.d);
  P.s.compute_at(P.part, P.c).reorder(P.jj, P.g, P.i).gpu_threads(P.jj);
  P.sdot.compute_at(P.s, P.jj);
  P.cmax.compute_at(P.part, P.c).gpu_threads(P.g);
  P.cmax.update().gpu_threads(P.g);
  P.p.compute_at(P.part, P.c).reorder(P.jj, P.g, P.i).gpu_threads(P.jj);
  P.csum.compute_at(P.part, P.c).gpu_threads(P.g);
  P.csum.update().gpu_threads(P.g);
  P.cpv.compute_at(P.part, P.c).reorder(P.e, P.g, P.i).gpu_threads(P.e);
  P.cpv.update().reorder(P.e, P.rj, P.g, P.i).gpu_threads(P.e);

  P.gmax.compute_root().gpu_blocks(P.hk).gpu_threads(P.g);
  P.gmax.update().gpu_blocks(P.hk).gpu_threads(P.g);
  P.merged.compute_root().reorder(P.e, P.g, P.i, P.hk, P.b).gpu_blocks(P.hk).gpu_threads(P.e);
  P.merged.update().reorder(P.e, rc, P.g, P.i, P.hk, P.b).gpu_blocks(P.hk).gpu_threads(P.e);
  P.out.compute_root().gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
  if (P.lse.defined())
    P.lse.compute_root().gpu_blocks(P.i, P.h);
}

void scheduleDeltaCorrectCuda(DeltaPipeline &P, int64_t dv) {
  P.out.gpu_blocks(P.i, P.h).gpu_threads(P.e);
  P.out.output_buffer().dim(0).set_bounds(0, int(dv));
}

} // namespace deltaflow::compiler
