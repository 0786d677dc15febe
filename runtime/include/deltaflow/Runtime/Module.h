//===- Module.h - a compiled deltaflow module (.so + manifest) --*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_MODULE_H
#define DELTAFLOW_RUNTIME_MODULE_H

#include "deltaflow/Common/Manifest.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct halide_filter_metadata_t;
struct halide_buffer_t;
struct halide_device_interface_t;

namespace deltaflow::rt {

// The manifest's types are the compiler's (deltaflow/Common/Manifest.h).
using DimSpec = manifest::Dim;
using TensorSpec = manifest::TensorSpec;
using KernelInfo = manifest::KernelSpec;
using manifest::Arg;
using manifest::KernelKind;
using manifest::Role;

using ArgvFn = int (*)(void **);

class PtxKernel;          // runtime/lib/PtxLauncher.h
struct HalideCudaRuntime; // runtime/lib/PtxLauncher.h

/// A variant's function, resolved in the loaded library (the manifest's
/// Variant with the same index has its symbol and max rows): a Halide
/// pipeline (argv, metadata) or a PTX kernel launched through the driver.
struct KernelVariant {
  ArgvFn argv = nullptr;
  const halide_filter_metadata_t *metadata = nullptr;
  /// Holds pointers into the module's library (its PTX text, its Halide
  /// runtime): valid while the Module lives, as `argv`.
  std::shared_ptr<PtxKernel> ptx;
};

/// An entry of the manifest with its kernels' functions.
struct EntryInfo : manifest::EntrySpec {
  /// Per kernel (parallel to `kernels`): the variants' functions, and the
  /// dense fallback's. Empty for runtime kernels (cache_write).
  struct Bound {
    std::vector<KernelVariant> variants, denseFallback;
  };
  std::vector<Bound> bound;
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
  /// CUDA modules: gives `buf` (no device allocation yet) one through the
  /// module's Halide runtime, to keep it on the device (a session's KV
  /// cache): marked device-dirty, since the device holds the data from
  /// then on; returns true. CPU and OpenCL modules: returns false and
  /// does nothing (OpenCL sub-buffers need aligned offsets, which a cache
  /// row need not have). Throws in one line when the allocation fails.
  bool deviceAllocate(halide_buffer_t *buf) const;
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
  /// CUDA modules: the Halide runtime entry points the PTX launcher and the
  /// device KV-cache writes use (its context); null otherwise.
  const HalideCudaRuntime *cudaRuntime() const { return cuda_.get(); }

private:
  Module() = default;
  std::string path_, target_;
  void *handle_ = nullptr;
  using BufferFn = int (*)(void *, halide_buffer_t *);
  BufferFn copyToHost_ = nullptr, deviceSync_ = nullptr;
  using DeviceMallocFn = int (*)(void *, halide_buffer_t *, const halide_device_interface_t *);
  DeviceMallocFn deviceMalloc_ = nullptr;
  const halide_device_interface_t *(*cudaInterface_)() = nullptr;
  std::shared_ptr<const HalideCudaRuntime> cuda_;
  bool gpu_ = false, opencl_ = false;
  mutable std::atomic<bool> ran_{false}; ///< set by the Executor's first run
  int device_ = -1;
  friend class Executor;
  std::vector<EntryInfo> entries_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_MODULE_H
