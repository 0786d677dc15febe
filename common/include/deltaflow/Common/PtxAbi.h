//===- PtxAbi.h - launch constants shared by the PTX kernels and the runtime -*- C++ -*-===//
//
// The block sizes of kernels whose launch the runtime derives rather than
// reads from the manifest (compiler/include/deltaflow/Compiler/TensorCore.h
// describes each ABI; runtime/lib/PtxLauncher.cpp plans the launches).
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMMON_PTXABI_H
#define DELTAFLOW_COMMON_PTXABI_H

#include <cstdint>

namespace deltaflow::ptx_abi {

/// "decode-v1": threads per CTA of `<prefix>_split` and `<prefix>_merge`.
constexpr int64_t kDecodeSplitThreads = 128, kDecodeMergeThreads = 256;

/// Dynamic shared memory of the LSE merge (decode-v1's and dense-rows-v1's
/// `<prefix>_merge`) for head dim `d`: a max and a sum per warp, then
/// kDecodeMergeThreads / (d / 4) partial output rows of d floats.
constexpr int64_t mergeSharedBytes(int64_t d) {
  return (kDecodeMergeThreads / 32) * 8 +
         (kDecodeMergeThreads / (d / 4 > 0 ? d / 4 : 1)) * d * 4;
}

/// "dense-rows-v1": keys per split are a multiple of this (and so of every
/// key tile the kernel admits).
constexpr int64_t kRowsSplitQuantum = 256;

/// "gemm-v1": output columns per CTA (grid x = N / kGemmBlockN; the
/// manifest's rowsPerBlock gives the rows, grid y = ceil(M / rowsPerBlock))
/// and the depth step (K is a multiple of it).
constexpr int64_t kGemmBlockN = 128, kGemmBlockK = 32;

/// "gemv-v2": warps per CTA and output columns per warp (grid x =
/// ceil(N / (kGemvWarps kGemvColumnsPerWarp))); K is a multiple of
/// kGemvDepthQuantum. ("gemv-v1", one column a warp, is gone.)
constexpr int64_t kGemvWarps = 8, kGemvColumnsPerWarp = 4, kGemvDepthQuantum = 8;

} // namespace deltaflow::ptx_abi

#endif // DELTAFLOW_COMMON_PTXABI_H
