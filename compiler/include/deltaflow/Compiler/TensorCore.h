//===- TensorCore.h - tensor-core attention kernels through MLIR NVGPU -*- C++ -*-===//
//
// GPU attention tiles that Halide cannot generate: FlashAttention-2's forward
// pass (Dao, "FlashAttention-2", 2023, Algorithm 1) on the tensor cores'
// `mma.sync.aligned.m16n8k16` (PTX ISA 8.x, "Warp-level matrix multiply-
// accumulate"), written with MLIR's gpu + nvgpu + nvvm dialects and lowered
// through LLVM's NVPTX back end to PTX. No MLIR or Halide type appears here:
// the driver (an MLIR translation unit) calls it, the emitter (a Halide one)
// embeds the result.
//
// Kernel ABI ("attention-v1"), which the runtime's launcher packs
// (runtime/lib/PtxLauncher.cpp):
//   parameters: q, k, v, out[, lse] as 1-D memref descriptors of their
//     elements {allocated ptr, aligned ptr, offset 0, size, stride 1}
//     (MLIR's default memref calling convention: 5 x 8 bytes each), then
//     Nq and Nk as 64-bit integers;
//   layouts: q [B, Hq, Nq, D], k and v [B, Hkv, Nk, D], out [B, Hq, Nq, D],
//     lse [B, Hq, Nq] (natural log, float32), innermost last, dense;
//   grid: (ceil(Nq / rowsPerBlock), Hq, B), block (threads, 1, 1), dynamic
//     shared memory `sharedBytes`.
// The window + sinks form of attn.sparse_attention has the same ABI (it
// takes no index input); only the key tiles it visits differ. With an index
// input (a selection: sinks + selected keys + a local window anchored at
// the chunk start), `indices` [B, Hs, ceil(Nq / chunk), slots] of int32
// follows v as one more memref descriptor: q, k, v, indices, out[, lse],
// Nq, Nk. Its valid entries come first, ascending, then -1 (attn.select's
// contract); entries outside [0, Nk) are ignored.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_TENSORCORE_H
#define DELTAFLOW_COMPILER_TENSORCORE_H

#include "deltaflow/Common/Manifest.h"
#include "deltaflow/Common/PtxAbi.h"

#include <cstdint>
#include <string>

namespace deltaflow::compiler {

/// The tile of the tensor-core attention kernel.
struct TensorCoreTile {
  int warps = 8;     ///< warps per CTA; each owns 16 query rows
  int keyTile = 64;  ///< keys per K/V tile in shared memory (double-buffered)
  /// Width of the shared-memory address arithmetic of the ldmatrix loads:
  /// 32 (per-lane bases, one xor per fragment; 309 against 296 TFLOP/s at
  /// 32K on the H200) or 64 (MLIR's index type throughout).
  int addressBits = 32;
};

/// A generated PTX kernel and its launch shape.
struct PtxKernel {
  std::string function;      ///< the .entry name in `ptx`
  std::string ptx;           ///< PTX text (no trailing NUL)
  std::string mlir;          ///< the gpu.module before lowering (for --emit)
  int threads = 0;           ///< block size (x)
  int64_t sharedBytes = 0;   ///< dynamic shared memory per CTA
  int rowsPerBlock = 0;      ///< query rows per CTA (grid x = ceil(Nq/this))
  int computeCapability = 80;///< needed by the PTX (major*10 + minor)
  int64_t maxRows = -1;      ///< the variant serves at most this many query rows (-1: any)
  /// The launch ABI the manifest names ("" for attention-v1).
  std::string abi;
};

/// Largest dynamic shared memory per CTA on the oldest GPU the PTX targets
/// (A100: 163 KB opt-in; H100/H200: 227 KB).
constexpr int64_t kTensorCoreMaxSharedBytes = 163 * 1024;

/// Why attention `spec` has no tensor-core kernel ("" when it has one).
/// Covered: Q, K, V and the output all bf16 or all f16 (spec.dtype ==
/// spec.kvDtype), head dims 64, 128 or 256 with Dv == D, scale > 0, and
/// shared memory within kTensorCoreMaxSharedBytes. `sparse`, when given,
/// makes it attn.sparse_attention (causal). Without a selection (`slots` ==
/// 0), its window + sinks form: query at position p sees key j iff j <= p
/// and (j < sinks or p - j <= window), FlashAttention's
/// window_size=(window, 0) plus attention sinks (Xiao et al., "Efficient
/// Streaming Language Models with Attention Sinks", 2023).
///
/// With a selection (`sparse->slots` > 0) it is attn.sparse_attention's
/// chunked form: a query at position p of chunk c (first position s0) sees
/// the sinks [0, sinks), the chunk's selected keys, and the local window
/// [max(sinks, s0 - window), p]; a context of at most sinks + slots +
/// window keys is dense causal attention (the op's dense fallback). The
/// chunk must be a multiple of the CTA's warps * 16 rows; `selHeads` (the
/// index tensor's dim 1) is 1 or Hkv.
std::string tensorCoreUnsupported(const manifest::AttentionParams &spec,
                                  const TensorCoreTile &tile,
                                  const manifest::SparsePattern *sparse = nullptr,
                                  int64_t selHeads = 1);

/// Builds, lowers and serialises the kernel (sm_80 PTX; Hopper runs it
/// through the driver's JIT). Throws std::runtime_error with one line when
/// tensorCoreUnsupported() says why, or when lowering fails.
PtxKernel buildTensorCoreAttention(const manifest::AttentionParams &spec,
                                   const TensorCoreTile &tile,
                                   const std::string &function,
                                   const manifest::SparsePattern *sparse = nullptr,
                                   int64_t selHeads = 1);

/// attn.select on the device for a 16-bit query: its policy parameters,
/// the head shape and the query type (K as `kDtype`).
struct DeviceSelectSpec : manifest::SelectParams {
  int64_t hq = 0, hkv = 0, d = 0;
  manifest::DType dtype = manifest::DType::BFloat16;
};

/// The selection kernels of one attn.select ("token-select-v4" ABI): seven
/// entries `<prefix>_qbar`, `_stats`, `_merge`, `_vote`, `_topk_cand`,
/// `_topk_thresh`, `_topk_write`, launched in that order on one stream. Every entry takes the same parameters: q
/// [B, Hq, Nq, D], k [B, Hkv, Nk, D] (16-bit), the f32 scratch buffers
/// qbar [B, C, Hq, D], stats [B, C, NP, Hq, 2], hstats [B, C, Hq, 2], vote
/// [B, C, Nk], scores [B, C, Hq, Nk] (since v2: stats writes the scores
/// there and vote reads them, where v1 read K again), the i32 scratch hist
/// [B, C, kSelectHistWords] (since v3: stats zeroes it, vote counts the
/// top 16 bits of each vote's order-preserving key there (v4: and the top
/// 8 bits), the top-k starts its radix select from it), and the output
/// indices [B, 1, C, slots] (i32), as 1-D
/// memref descriptors, then Nq and Nk; C = ceil(Nq / chunk), NP = 8
/// ceil(Nk / 256).
/// Grids and blocks: qbar (C, Hq, B) x 1024 with 4 KB of dynamic shared
/// memory; stats (ceil(Nk / 256), C, B) x 256 with Hq D 4 bytes; merge
/// (Hq, C, B) x 256 with 64 bytes; vote as stats with Hq (D + 2) 4 bytes;
/// topk_cand and topk_write (ceil(Nk / kSelectTopKSlice), C, B) and
/// topk_thresh (C, B) x 1024 with kSelectTopKSharedBytes. At most
/// kSelectMaxKeys keys.
constexpr int64_t kSelectHistBins = manifest::kSelectHistBins;
constexpr int64_t kSelectHistWords = manifest::kSelectHistWords;
constexpr int64_t kSelectTopKSlice = manifest::kSelectTopKSlice;
constexpr int64_t kSelectMaxKeys = manifest::kSelectMaxKeys;
constexpr int64_t kSelectTopKSharedBytes = 33928;
struct DeviceSelectKernels {
  std::string prefix; ///< entry names are prefix + "_qbar", ...
  std::string ptx;    ///< PTX text of all seven (no trailing NUL)
  std::string mlir;   ///< the gpu.module before lowering
};

/// Why `spec` has no device selection ("" when it has one): the
/// token-select policy (one shared selection), bf16/f16 Q and K of the same
/// type, head dims 64/128/256, up to 16 query heads per KV head.
std::string deviceSelectUnsupported(const DeviceSelectSpec &spec);

/// Builds and lowers the selection kernels (sm_80 PTX). Throws
/// std::runtime_error with one line on an unsupported spec or a failed
/// lowering.
DeviceSelectKernels buildDeviceSelect(const DeviceSelectSpec &spec,
                                      const std::string &prefix);

/// Δ's dense rows (attn.dense_rows) for bf16/f16 Q, K, V on the tensor
/// cores ("dense-rows-v1" ABI). Its rows, query rows 0, s, 2s, ... then
/// the prompt's tail (common/include/deltaflow/Common/SparseGeometry.h),
/// each see every key up to their position, so the keys are split as in
/// Flash-Decoding and merged by LSE. Two entries, `<prefix>_split` then
/// `<prefix>_merge`, launched in that order on one stream, take the same
/// parameters: q [B, Hq, Nq, D], k and v [B, Hkv, Nk, D], rows [B, Hq, R,
/// D] (R = ceil(Nq / s) + deltaExtraRows(s); rows past the strided ones
/// and this call's tail are written as 0), then the f32 scratch partO [B,
/// Hq, R, S, D] and partL [B, Hq, R, S] (log2 domain), as 1-D memref
/// descriptors, then Nq, Nk, keysPerSplit (a multiple of
/// ptx_abi::kRowsSplitQuantum) and rowsAfter (the prompt rows after this
/// call, >= 0) as 64-bit integers; S = ceil(Nk / keysPerSplit). Grids and
/// blocks: split (ceil(G U / rowsPerBlock), Hkv, S B) x threads with the
/// attention tile's shared memory, where U = ceil(Nq / s) + this call's
/// tail rows are the used rows and a CTA's rows are (query head g of the
/// KV head, used row) pairs, g-major; merge (R, Hq, B) x
/// kDecodeMergeThreads with ptx_abi::mergeSharedBytes(D).
std::string denseRowsUnsupported(const manifest::AttentionParams &spec,
                                 const TensorCoreTile &tile, int64_t stride);
PtxKernel buildDenseRowsAttention(const manifest::AttentionParams &spec,
                                  const TensorCoreTile &tile,
                                  const std::string &prefix, int64_t stride);

/// Δ's combination (attn.delta_correct) for bf16/f16 rows ("delta-correct-
/// v1" ABI): row i of the output is sparse[i] + rows[m] - sparse[m s] (m =
/// i / s), in f32 and rounded once, except the tail's rows, which are the
/// dense rows as they are. One entry `function` takes sparse [B, Hq, Nq,
/// D], rows [B, Hq, R, D] and out [B, Hq, Nq, D] as 1-D memref
/// descriptors, then Nq and rowsAfter as 64-bit integers; grid (ceil(Nq /
/// rowsPerBlock), Hq, B) x kDeltaCorrectThreads, no shared memory;
/// rowsPerBlock = kDeltaCorrectThreads / (D / 8). Head dims: multiples of 8
/// up to 8 kDeltaCorrectThreads.
constexpr int kDeltaCorrectThreads = 128;
std::string deltaCorrectUnsupported(manifest::DType dtype, int64_t d, int64_t stride);
PtxKernel buildDeltaCorrect(manifest::DType dtype, int64_t d, int64_t stride,
                            const std::string &function);

/// A graph matmul with a 16-bit weight on the tensor cores ("gemm-v1" ABI;
/// compiler/TensorCore/Gemm.cpp): C = A B^T with A f32 [M, K] (rounded to
/// the weight's type as it is read), B bf16/f16 [N, K] (nn.Linear's weight
/// layout), C f32 [M, N], f32 accumulation. One entry `function` takes a,
/// b and c as 1-D memref descriptors, then M as a 64-bit integer; grid
/// (N / ptx_abi::kGemmBlockN, ceil(M / rowsPerBlock)) x threads with
/// sharedBytes of dynamic shared memory. K must be a multiple of
/// ptx_abi::kGemmBlockK and N of kGemmBlockN.
std::string gemmUnsupported(manifest::DType weight, int64_t k, int64_t n);
PtxKernel buildTensorCoreGemm(manifest::DType weight, int64_t k, int64_t n,
                              const std::string &function);

/// The same product for a few rows of A (decode), four output columns a
/// warp ("gemv-v2" ABI; compiler/TensorCore/Gemv.cpp): the same
/// parameters as buildTensorCoreGemm's; grid ceil(N / (ptx_abi::kGemvWarps
/// x ptx_abi::kGemvColumnsPerWarp)) x threads, no shared memory;
/// rowsPerBlock is the rows per pass over the weight: `rowsPerPass`, 1 to
/// kGemvMaxRowsPerPass (a decode entry whose rows are static passes them,
/// so that one row costs no FMAs or registers of four). K must be a multiple of ptx_abi::kGemvDepthQuantum; any N.
constexpr int64_t kGemvMaxRowsPerPass = 4;
std::string gemvUnsupported(manifest::DType weight, int64_t k, int64_t n);
PtxKernel buildGemv(manifest::DType weight, int64_t k, int64_t n,
                    const std::string &function,
                    int64_t rowsPerPass = kGemvMaxRowsPerPass);

/// Rows from which the GEMM runs (below: the GEMV).
constexpr int64_t kGemmMinRows = 16;

/// A graph kernel left by splitTensorCoreGemms holding a matmul alone,
/// for buildTensorCoreGemm and buildGemv.
struct GemmKernel {
  std::string kernel;     ///< its KernelDesc::name
  manifest::DType weight; ///< bf16 or f16
  int64_t k = 0, n = 0;   ///< depth and output columns
  /// Rows static and below kGemmMinRows (decode): the GEMV alone.
  bool fewRows = false;
  int64_t rows = -1; ///< A's rows when static, else -1
};

/// Split-K decode of dense attention for bf16/f16 Q, K, V (Flash-Decoding;
/// compiler/TensorCore/Decode.cpp): the few-row variant beside the tile
/// ("decode-v1" ABI). Two entries, `<prefix>_split` then `<prefix>_merge`,
/// launched in that order on one stream, take the same parameters: q, k,
/// v, out[, lse] as for "attention-v1", then the f32 scratch partO [B, Hq,
/// Nq, S, D] and partL [B, Hq, Nq, S] (log2 domain), as 1-D memref
/// descriptors, then Nq, Nk and keysPerSplit as 64-bit integers; S =
/// ceil(Nk / keysPerSplit). Grids and blocks: split (S, Nq Hkv, B) x
/// kDecodeSplitThreads, merge (Nq, Hq, B) x kDecodeMergeThreads, both with
/// decodeSharedBytes(spec) of dynamic shared memory.
using ptx_abi::kDecodeSplitThreads;
using ptx_abi::kDecodeMergeThreads;

/// Why `spec` has no decode kernel ("" when it has one). Covered: Q, K, V
/// and the output all bf16 or all f16, D == Dv in {64, 128, 256}, up to 8
/// query heads per KV head, causal (the last Nq of Nk keys, or a static
/// offset) or not.
std::string decodeUnsupported(const manifest::AttentionParams &spec);
int64_t decodeSharedBytes(const manifest::AttentionParams &spec);

/// The split kernel's loop (compiler/TensorCore/Decode.cpp).
struct DecodeTile {
  /// Key rows each lane group loads per step: 0 picks 4 for up to 4 query
  /// heads per KV head, else 2 (registers hold G query heads' state).
  int keysPerStep = 0;
  /// Issue the next step's K/V loads before this step's arithmetic
  /// (register double buffering), so loads stay in flight through it.
  bool prefetch = true;
};

/// Builds and lowers the two decode kernels (sm_80 PTX); `function` of the
/// result is `prefix`. Throws std::runtime_error with one line when
/// decodeUnsupported() says why, when tile.keysPerStep is not 0, 1, 2, 4
/// or 8, or when lowering fails.
PtxKernel buildDecodeAttention(const manifest::AttentionParams &spec,
                               const std::string &prefix,
                               const DecodeTile &tile = {});

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_TENSORCORE_H
