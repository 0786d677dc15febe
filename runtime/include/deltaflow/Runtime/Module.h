//===- Module.h - a compiled deltaflow module (.so + manifest) --*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_MODULE_H
#define DELTAFLOW_RUNTIME_MODULE_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct halide_filter_metadata_t;
struct halide_buffer_t;

namespace deltaflow::rt {

/// A dimension: static size, dynamic (-1), or "ceil(dimension `dim` of entry
/// input `like` / div) + add".
struct DimSpec {
  int64_t size = -1;
  std::string like;
  int dim = -1;
  int64_t div = 1, add = 0;
};

struct TensorSpec {
  std::string name;
  std::string dtype;
  std::vector<DimSpec> shape;
  /// Entry inputs: weight | tokens | positions | last_row | kv_cache | input.
  std::string role = "input";
};

using ArgvFn = int (*)(void **);

struct KernelVariant {
  std::string symbol;
  int64_t maxRows = -1; ///< -1: any number of query rows
  ArgvFn argv = nullptr;
  const halide_filter_metadata_t *metadata = nullptr;
};

struct KernelInfo {
  std::string name, kind, loc;
  std::vector<std::string> inputs, outputs;
  std::vector<KernelVariant> variants; ///< none for runtime kernels (cache_write)
  std::vector<size_t> deps;            ///< kernels whose outputs it reads
  /// The buffer dimension whose extent picks the variant (default: query
  /// rows, dimension 2 of inputs[0]).
  std::string rowsBuffer;
  int rowsDim = 2;
  /// dense_rows / delta_correct: the kernel takes an int32 scalar after its
  /// inputs, the number of prompt rows after this call (0: the call ends the
  /// prompt and computes the dense tail; an earlier chunk of a chunked
  /// prompt has none): RunOptions::promptRowsAfter, DESIGN.md "Δ-correction".
  bool takesPromptRowsAfter = false;
  /// sparse_attention: dense attention variants over (q, k, v) that run
  /// instead when the context fits the sparse pattern, i.e. when the keys
  /// (dimension 2 of inputs[1]) number at most `denseFallbackMaxKeys`
  /// (sinks + selection slots + window). -1: no fallback.
  int64_t denseFallbackMaxKeys = -1;
  std::vector<KernelVariant> denseFallback;
};

struct EntryInfo {
  std::string name;
  std::vector<TensorSpec> inputs, outputs, temporaries;
  std::vector<KernelInfo> kernels;
  /// Every SSA value as its own buffer: the baseline of the buffer plan.
  std::vector<TensorSpec> valueBuffers;
  const TensorSpec *findInput(const std::string &n) const;
  const TensorSpec *findOutput(const std::string &n) const;
};

/// A loaded `OUT.so` with its `OUT.manifest.json`. Loading checks that every
/// kernel symbol exists and agrees with the manifest, and routes the module's
/// Halide parallel loops onto oneTBB.
class Module {
public:
  static std::shared_ptr<Module> load(const std::string &soPath);
  ~Module();
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  const std::string &path() const { return path_; }
  const std::string &target() const { return target_; }
  const std::vector<EntryInfo> &entries() const { return entries_; }
  /// Throws with the list of entries when `name` is unknown.
  const EntryInfo &entry(const std::string &name) const;

  /// Halide error text captured for the calling thread since the last call.
  static std::string takeHalideError();

  /// GPU modules: whether the manifest says so, and a device-to-host copy
  /// of a buffer a kernel left on the device (0 on success).
  bool gpu() const { return gpu_; }
  int copyToHost(halide_buffer_t *buf) const;
  /// Waits for the device work on `buf` (GPU launches are asynchronous).
  int deviceSync(halide_buffer_t *buf) const;
  /// GPU modules: how many devices the module's GPU API sees (CUDA:
  /// cuDeviceGetCount; OpenCL: the devices of the first platform of
  /// HL_OCL_DEVICE_TYPE), or -1 where it cannot tell (HL_OCL_PLATFORM_NAME
  /// set). Throws when the driver cannot be queried.
  int gpuDeviceCount() const;
  /// GPU modules: run on device `index` (halide_set_gpu_device in the
  /// module's own Halide runtime). Throws in one line for index < 0 or
  /// index >= gpuDeviceCount(), or for a CPU module. Halide creates its
  /// context on the first run, so choose before it; a loaded module stays
  /// on one device (selecting another afterwards throws).
  void selectDevice(int index);
  int device() const { return device_; } ///< -1: Halide's default

private:
  Module() = default;
  std::string path_, target_;
  void *handle_ = nullptr;
  using BufferFn = int (*)(void *, halide_buffer_t *);
  BufferFn copyToHost_ = nullptr, deviceSync_ = nullptr;
  bool gpu_ = false, opencl_ = false;
  mutable bool ran_ = false; ///< set by the Executor's first run
  int device_ = -1;
  friend class Executor;
  std::vector<EntryInfo> entries_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_MODULE_H
