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

} // namespace deltaflow::ptx_abi

#endif // DELTAFLOW_COMMON_PTXABI_H
