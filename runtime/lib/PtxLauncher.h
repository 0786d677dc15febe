//===- PtxLauncher.h - launch a module's PTX kernels through the driver -*- C++ -*-===//
//
// A variant whose manifest entry has `ptx` is a kernel the compiler generated
// through MLIR's NVGPU path (tensor-core attention, compiler/TensorCore). Its
// PTX text is a data symbol of the module's library. The launcher loads it
// into the CUDA context of the module's own Halide runtime (so that device
// buffers are shared with the Halide kernels and copied by the same code),
// and launches it with cuLaunchKernel. libcuda.so.1 is opened at run time.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_PTXLAUNCHER_H
#define DELTAFLOW_RUNTIME_PTXLAUNCHER_H

#include "deltaflow/Common/Manifest.h"

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct halide_buffer_t;

namespace deltaflow::rt {

class Tensor;
struct HalideCudaRuntime;

/// What one launch of an "attention-v1" kernel passes (see
/// compiler/include/deltaflow/Compiler/TensorCore.h): pure data, computed
/// without a driver so that tests can check it.
struct PtxLaunchPlan {
  std::array<unsigned, 3> grid{0, 0, 0};
  unsigned threads = 0;
  unsigned sharedBytes = 0;
  /// Every kernel parameter as 8 bytes, in order.
  std::vector<uint64_t> params;
};

/// A view [B, H, N, D] whose heads lie `srcPitchBytes` apart, as a KV-cache
/// view (the session's cache holds `capacity` rows per head, the view the
/// first N): the tensor-core kernels address K/V as [B, H, N, D] with no
/// gaps, so the launcher first packs such a view into a dense scratch with
/// one 2-D copy (cuMemcpy2DAsync: `height` = B * H rows of `widthBytes` =
/// N * D elements). Pure data, computed without a driver.
struct PtxPackPlan {
  uint64_t widthBytes = 0, height = 0, srcPitchBytes = 0;
};
/// `shape` and `strides` (in elements) outermost first. Throws one line
/// when the view is strided in any other way than whole heads apart (D and
/// N contiguous, batches H heads apart).
PtxPackPlan planPack(const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &strides, size_t elementBytes);
/// The same for a tensor (its shape, Halide strides and dtype).
PtxPackPlan planPack(const Tensor &view);

/// The launch of attention over q [B, Hq, Nq, D], k and v [B, Hkv, Nk, D]
/// and the outputs, at device addresses `devicePtrs` (inputs then outputs,
/// as the kernel's manifest lists them) with their shapes. With `sparse`
/// holding a selection (slots > 0), the inputs end with indices [B, Hs,
/// ceil(Nq / chunk), slots] (Hs 1 or Hkv). Throws one line for shapes the
/// kernel cannot take (no keys; causal with no offset and Nq > Nk; K and V
/// of different lengths; indices of another shape; a grid beyond the
/// limits). Nq = 0 gives a plan with grid x = 0 (nothing to launch).
PtxLaunchPlan planAttentionLaunch(
    const manifest::PtxLaunch &launch, const manifest::AttentionParams &spec,
    const std::vector<std::vector<int64_t>> &shapes,
    const std::vector<uint64_t> &devicePtrs,
    const manifest::SparsePattern *sparse = nullptr);

/// The launches of a device selection ("token-select-v4", compiler/include/
/// deltaflow/Compiler/TensorCore.h): seven kernels in order over q [B, Hq,
/// Nq, D], k [B, Hkv, Nk, D] and the output indices [B, 1, C, slots] (C =
/// ceil(Nq / chunk)), with scratch at device address `scratch` of
/// `scratchBytes` (f32 qbar, stats, hstats, vote, scores, then i32 hist,
/// each 256-byte aligned).
/// Steps with an empty grid are left out. Throws one line for shapes the
/// kernels cannot take. (The decode plan below has the same form.)
struct PtxSelectPlan {
  std::vector<PtxLaunchPlan> steps; ///< qbar, stats, merge, vote, topk_cand, _thresh, _write
  std::vector<std::string> entries; ///< the step's entry suffix ("_qbar")
  uint64_t scratchBytes = 0;
};
PtxSelectPlan planSelectLaunch(const manifest::PtxLaunch &launch,
                               const manifest::SelectParams &select,
                               const std::vector<std::vector<int64_t>> &shapes,
                               const std::vector<uint64_t> &devicePtrs,
                               uint64_t scratch);

/// The launches of split-K decode ("decode-v1", compiler/include/deltaflow/
/// Compiler/TensorCore.h) over the buffers of planAttentionLaunch (checked
/// the same way) with its f32 scratch at device address `scratch`: the
/// split then the merge. keysPerSplit is a multiple of 256 chosen so that
/// the split has about kDecodeTargetCtas CTAs (the H200 has 132 SMs).
/// Throws one line for shapes the kernels cannot take.
constexpr int64_t kDecodeTargetCtas = 1024;
PtxSelectPlan planDecodeLaunch(const manifest::PtxLaunch &launch,
                               const manifest::AttentionParams &spec,
                               const std::vector<std::vector<int64_t>> &shapes,
                               const std::vector<uint64_t> &devicePtrs,
                               uint64_t scratch);

/// The launches of Δ's dense rows ("dense-rows-v1", compiler/include/
/// deltaflow/Compiler/TensorCore.h) over q, k, v and the rows [B, Hq,
/// ceil(Nq / stride) + deltaExtraRows(stride), Dv] at `devicePtrs`, with
/// its f32 scratch (partO, partL) at `scratch`: the split then the merge.
/// keysPerSplit is a multiple of ptx_abi::kRowsSplitQuantum chosen so that
/// the split has about kDecodeTargetCtas CTAs; `rowsAfter` is the prompt
/// rows after this call (Executor's promptRowsAfter). Throws one line for
/// shapes the kernels cannot take.
PtxSelectPlan planDenseRowsLaunch(const manifest::PtxLaunch &launch,
                                  const manifest::AttentionParams &spec,
                                  int64_t stride,
                                  const std::vector<std::vector<int64_t>> &shapes,
                                  const std::vector<uint64_t> &devicePtrs,
                                  uint64_t scratch, int64_t rowsAfter);

/// The launch of Δ's combination ("delta-correct-v1") over sparse [B, Hq,
/// Nq, Dv], rows (as above) and out [B, Hq, Nq, Dv]: one step, no scratch;
/// none for Nq = 0 or B = 0. Throws one line for shapes it cannot take.
PtxSelectPlan planDeltaCorrectLaunch(const manifest::PtxLaunch &launch, int64_t stride,
                                     const std::vector<std::vector<int64_t>> &shapes,
                                     const std::vector<uint64_t> &devicePtrs,
                                     int64_t rowsAfter);

/// The launch of a graph matmul's tensor-core GEMM ("gemm-v1", compiler/
/// include/deltaflow/Compiler/TensorCore.h) or GEMV ("gemv-v2", the few
/// rows; by launch.abi) over a f32 [..., K], the 16-bit weight of N K
/// elements ([N, K], nn.Linear's layout) and c f32 [..., N] (a's leading
/// dimensions): one step, no scratch; none for no rows. Throws one line
/// for shapes it cannot take.
PtxSelectPlan planGemmLaunch(const manifest::PtxLaunch &launch,
                             const std::vector<std::vector<int64_t>> &shapes,
                             const std::vector<uint64_t> &devicePtrs);

/// Copies `height` rows of `widthBytes` between device allocations of the
/// module's CUDA context, `srcPitch` / `dstPitch` bytes apart, with one
/// cuMemcpy2DAsync on stream 0 (ordered with every launch): the new rows of
/// a decode step into the device KV cache ([B * H] rows of n * D elements,
/// the cache's capacity * D apart). Returns false, doing nothing, where the
/// driver or the runtime lacks the entry points (the caller then copies
/// with Halide's buffer_copy, one cuMemcpyDtoD per head); throws one line
/// on a driver error.
bool deviceCopy2D(const HalideCudaRuntime &h, const std::string &where, uint64_t dst,
                  size_t dstPitch, uint64_t src, size_t srcPitch, size_t widthBytes,
                  size_t height);

/// "8.0" for 80 (major * 10 + minor).
std::string computeCapabilityString(int cc);

/// The entry points of a module's Halide runtime the launcher uses.
struct HalideCudaRuntime {
  int (*copyToDevice)(void *, halide_buffer_t *, const void *) = nullptr;
  int (*deviceMalloc)(void *, halide_buffer_t *, const void *) = nullptr;
  const void *(*deviceInterface)() = nullptr;
  int (*acquireContext)(void *, void **, bool) = nullptr;
  int (*releaseContext)(void *) = nullptr;
};

/// One PTX kernel of a loaded module.
/// The dense copies of strided K/V views (PtxPackPlan), one per module and
/// shared by its kernels: every launch is ordered on stream 0, and a kernel
/// holds `mutex` from its packing until its launches are queued, so one
/// buffer serves them all (one per kernel was a copy of the cache per layer
/// and variant). Grown as needed, never shrunk; the driver frees it with
/// the context.
struct PtxPackScratch {
  std::mutex mutex;
  uint64_t ptr = 0, bytes = 0;
};

class PtxKernel {
public:
  /// `entries`: the suffixes of the PTX's entry points after
  /// launch.function ({""} for attention; the seven of a selection).
  PtxKernel(const manifest::PtxLaunch &launch, const char *ptx,
            HalideCudaRuntime halide, std::string where,
            std::vector<std::string> entries = {""},
            std::shared_ptr<PtxPackScratch> pack = nullptr);
  ~PtxKernel();
  /// Copies the inputs to the device where their host copy is newer,
  /// allocates the outputs there, and launches (asynchronously: the
  /// executor's device sync waits). `tensors`: inputs then outputs;
  /// `promptRowsAfter`: for Δ's kernels, the prompt rows after this call.
  /// Throws one line on failure.
  void launch(const manifest::KernelSpec &kernel, std::vector<Tensor> &tensors,
              int64_t promptRowsAfter = 0);
  const manifest::PtxLaunch &description() const { return launch_; }

private:
  void loadInContext(); // under mutex_, with the context current
  /// The launches of a multi-step plan (selection, decode, Δ) made by
  /// `plan(scratch)`, with the scratch it asks for allocated first.
  template <typename Plan> void launchSteps(Plan plan);
  /// Packs the strided inputs (KV-cache views) into pack_'s buffer and
  /// points their entries of `ptrs` there; under pack_->mutex, which the
  /// caller holds until its launches are queued (they read it in stream
  /// order).
  /// `packs`: (input index, its plan), as launch() checked them.
  void packStridedInputs(const std::vector<std::pair<size_t, PtxPackPlan>> &packs,
                         std::vector<uint64_t> &ptrs);
  manifest::PtxLaunch launch_;
  const char *ptx_;
  HalideCudaRuntime halide_;
  std::string where_;
  std::vector<std::string> entries_;
  std::mutex mutex_;
  void *module_ = nullptr;
  std::vector<void *> functions_; ///< one per entry, once loaded
  uint64_t scratch_ = 0, scratchBytes_ = 0; ///< selection/decode scratch (cuMemAlloc)
  std::shared_ptr<PtxPackScratch> pack_; ///< the module's, or this kernel's own
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_PTXLAUNCHER_H
