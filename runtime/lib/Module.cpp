//===- Module.cpp - load OUT.so + OUT.manifest.json -----------------------===//

#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Common/KernelGraph.h"
#include "deltaflow/Runtime/Tensor.h"
#include "HalideParallelRuntime.h"
#include "PtxLauncher.h"

#include "HalideRuntime.h"

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace deltaflow::rt {

namespace {

thread_local std::string halideErrorText;

void captureHalideError(void *, const char *msg) {
  std::string m = msg ? msg : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
    m.pop_back();
  if (!halideErrorText.empty())
    halideErrorText += "; ";
  halideErrorText += m;
}

std::string manifestPathFor(const std::string &so) {
  std::string base = so;
  if (base.size() > 3 && base.compare(base.size() - 3, 3, ".so") == 0)
    base.resize(base.size() - 3);
  return base + ".manifest.json";
}

template <typename Fn> Fn lookup(void *handle, const std::string &sym) {
  dlerror();
  void *p = dlsym(handle, sym.c_str());
  return reinterpret_cast<Fn>(p);
}

} // namespace

namespace {
/// Halide's GPU runtimes open "libcuda.so" / "libOpenCL.so", which driver
/// installs often provide only with their soname (".so.1").
void *loadLibraryWithSoname(const char *name) {
  void *h = dlopen(name, RTLD_LAZY | RTLD_GLOBAL);
  std::string n = name;
  if (!h && n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0)
    h = dlopen((n + ".1").c_str(), RTLD_LAZY | RTLD_GLOBAL);
  return h;
}
} // namespace

namespace {
/// Two entry points of a GPU driver library (nullptr where it or they are
/// missing).
template <typename A, typename B>
std::pair<A, B> driverSymbols(const char *library, const char *a, const char *b) {
  void *h = loadLibraryWithSoname(library);
  if (!h)
    return {nullptr, nullptr};
  return {lookup<A>(h, a), lookup<B>(h, b)};
}
} // namespace

int Module::copyToHost(halide_buffer_t *buf) const {
  return copyToHost_ && buf->device ? copyToHost_(nullptr, buf) : 0;
}

int Module::deviceSync(halide_buffer_t *buf) const {
  return deviceSync_ && buf->device ? deviceSync_(nullptr, buf) : 0;
}

bool Module::deviceAllocate(halide_buffer_t *buf) const {
  if (!gpu_ || opencl_ || !deviceMalloc_ || !cudaInterface_)
    return false;
  ran_ = true; // the allocation makes the GPU context on this device
  if (deviceMalloc_(nullptr, buf, cudaInterface_()) != 0) {
    size_t bytes = buf->type.bytes();
    for (int d = 0; d < buf->dimensions; ++d)
      bytes *= size_t(buf->dim[d].extent);
    throw std::runtime_error(path_ + ": cannot allocate " + std::to_string(bytes >> 20) +
                             " MiB on the GPU: " + takeHalideError());
  }
  buf->flags = halide_buffer_flag_device_dirty; // the device holds the data
  return true;
}

std::string Module::takeHalideError() {
  std::string s;
  s.swap(halideErrorText);
  return s;
}

std::shared_ptr<Module> Module::load(const std::string &soPath) {
  std::shared_ptr<Module> m(new Module());
  m->path_ = soPath;
  std::string manifestPath = manifestPathFor(soPath);

  manifest::ModuleSpec spec;
  {
    std::ifstream in(manifestPath);
    if (!in)
      throw std::runtime_error(manifestPath + ": cannot open the module "
                               "manifest (expected next to " + soPath + ")");
    std::string text(std::istreambuf_iterator<char>(in), {});
    spec = manifest::fromJson(text, manifestPath);
  }
  m->target_ = spec.target;
  // A module for another architecture: say so, rather than dlopen's ELF
  // complaint.
  if (!spec.halideTarget.empty()) {
    const std::string &ht = spec.halideTarget;
#if defined(__aarch64__)
    const char *mine = "arm-64", *myName = "arm64";
#elif defined(__x86_64__)
    const char *mine = "x86-64", *myName = "x86-64";
#else
    const char *mine = nullptr, *myName = "";
#endif
    if (mine && ht.rfind(mine, 0) != 0)
      throw std::runtime_error(soPath + ": module compiled for " + m->target_ +
                               " (" + ht + "); this runtime runs " + myName +
                               " modules");
  }

  // RTLD_LOCAL: each module keeps its own Halide runtime.
  std::string openPath = soPath.find('/') == std::string::npos ? "./" + soPath : soPath;
  m->handle_ = dlopen(openPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m->handle_)
    throw std::runtime_error(std::string("cannot load module: ") + dlerror());

  using SetParFor = halide_do_par_for_t (*)(halide_do_par_for_t);
  using SetDoTask = halide_do_task_t (*)(halide_do_task_t);
  using SetError = halide_error_handler_t (*)(halide_error_handler_t);
  auto setParFor = lookup<SetParFor>(m->handle_, "halide_set_custom_do_par_for");
  auto setDoTask = lookup<SetDoTask>(m->handle_, "halide_set_custom_do_task");
  auto setError = lookup<SetError>(m->handle_, "halide_set_error_handler");
  if (!setParFor || !setDoTask || !setError)
    throw std::runtime_error(soPath + ": no Halide runtime inside (was it built "
                             "by deltaflow-compile?)");
  setParFor(&detail::tbbDoParFor);
  setDoTask(&detail::tbbDoTask);
  setError(&captureHalideError);
  // GPU modules: Halide 14's CUDA runtime opens "libcuda.so", which driver
  // installs often provide only as libcuda.so.1.
  using SetLoadLibrary = halide_load_library_t (*)(halide_load_library_t);
  if (auto setLoad = lookup<SetLoadLibrary>(m->handle_, "halide_set_custom_load_library"))
    setLoad(&loadLibraryWithSoname);
  m->deviceSync_ = lookup<BufferFn>(m->handle_, "halide_device_sync");
  m->copyToHost_ = lookup<BufferFn>(m->handle_, "halide_copy_to_host");
  m->deviceMalloc_ = lookup<DeviceMallocFn>(m->handle_, "halide_device_malloc");
  m->cudaInterface_ = lookup<decltype(m->cudaInterface_)>(m->handle_,
                                                          "halide_cuda_device_interface");
  m->gpu_ = spec.gpu;
  if (m->gpu_) {
    // Fail early and in one line on a machine without the GPU driver.
    const std::string &ht = spec.halideTarget;
    bool opencl = ht.find("opencl") != std::string::npos;
    m->opencl_ = opencl;
    // Modules with tensor-core (PTX) kernels say which GPUs they need: the
    // PTX kernels' capability, and Halide's (cuda_capability_86) where the
    // module also has Halide kernels.
    int needCc = 0;
    bool ptx = false;
    for (const manifest::EntrySpec &e : spec.entries)
      for (const manifest::KernelSpec &k : e.kernels)
        for (const manifest::Variant &v : k.variants) {
          ptx |= bool(v.ptx);
          needCc = std::max(needCc, v.ptx ? v.ptx->computeCapability : 86);
        }
    std::string need =
        ptx ? " (it needs an NVIDIA GPU of compute capability " +
                  computeCapabilityString(needCc) + " or newer)"
            : std::string();
    if (!loadLibraryWithSoname(opencl ? "libOpenCL.so" : "libcuda.so"))
      throw std::runtime_error(
          soPath + (opencl ? ": an OpenCL module, and this machine has no "
                             "OpenCL loader (libOpenCL.so.1 not found)"
                           : ": a GPU module" + need +
                                 ", and this machine has no CUDA driver "
                                 "(libcuda.so.1 not found)"));
    // Keep device buffers for reuse between runs: cuMemAlloc is slow.
    if (auto reuse = lookup<int (*)(void *, bool)>(m->handle_,
                                                   "halide_reuse_device_allocations"))
      reuse(nullptr, true);
  }

  // The module's Halide CUDA entry points (CUDA modules), for its PTX
  // kernels and the device KV-cache writes; and the one buffer its PTX
  // kernels pack strided K/V views into.
  if (m->gpu_ && !m->opencl_) {
    auto h = std::make_shared<HalideCudaRuntime>();
    h->copyToDevice = lookup<decltype(h->copyToDevice)>(m->handle_, "halide_copy_to_device");
    h->deviceMalloc = lookup<decltype(h->deviceMalloc)>(m->handle_, "halide_device_malloc");
    h->deviceInterface = lookup<decltype(h->deviceInterface)>(m->handle_, "halide_cuda_device_interface");
    h->acquireContext = lookup<decltype(h->acquireContext)>(m->handle_, "halide_cuda_acquire_context");
    h->releaseContext = lookup<decltype(h->releaseContext)>(m->handle_, "halide_cuda_release_context");
    m->cuda_ = std::move(h);
  }
  const HalideCudaRuntime noCuda;
  auto pack = std::make_shared<PtxPackScratch>();
  auto cudaRuntime = [&]() -> const HalideCudaRuntime & {
    return m->cuda_ ? *m->cuda_ : noCuda;
  };
  // Each variant's symbol must exist and take the arguments the manifest
  // lists: inputs (q, k, v only for a dense fallback), outputs, and the
  // prompt_rows_after scalar.
  for (manifest::EntrySpec &es : spec.entries) {
    EntryInfo e;
    static_cast<manifest::EntrySpec &>(e) = std::move(es);
    std::string where = manifestPath + ": entry '" + e.name + "'";
    // The executor orders kernels by `deps` alone: they must include every
    // read-after-write dependency (common/KernelGraph.h).
    std::vector<std::vector<size_t>> needed = readAfterWriteDeps(e.kernels);
    for (size_t i = 0; i < e.kernels.size(); ++i)
      for (size_t d : needed[i])
        if (std::find(e.kernels[i].deps.begin(), e.kernels[i].deps.end(), d) ==
            e.kernels[i].deps.end())
          throw std::runtime_error(where + " kernel '" + e.kernels[i].name +
                                   "': reads what kernel " + std::to_string(d) +
                                   " writes, but deps omit it");
    for (const KernelInfo &k : e.kernels) {
      std::string kw = where + " kernel '" + k.name + "'";
      auto bind = [&](const std::vector<manifest::Variant> &list, size_t nargs) {
        std::vector<KernelVariant> out;
        for (const manifest::Variant &v : list) {
          KernelVariant b;
          if (v.ptx) {
            // A PTX kernel: its text is a data symbol of the library.
            const char *text = lookup<const char *>(m->handle_, v.symbol);
            if (!text)
              throw std::runtime_error(kw + ": PTX symbol '" + v.symbol +
                                       "' not found in " + soPath);
            // Dense attention and window + sinks sparse attention take
            // q, k, v, out[, lse]; sparse attention with a selection also
            // takes its indices after v; a selection (seven entries) takes
            // q, k and writes the indices; Δ's rows take q, k, v and write
            // the rows, its combination takes the sparse output and the
            // rows (both also the prompt rows after the call).
            const bool select = k.kind == KernelKind::Select;
            const bool rows = k.kind == KernelKind::DenseRows;
            const bool delta = k.kind == KernelKind::DeltaCorrect;
            // A graph kernel's PTX is a matmul alone (a, the weight -> c):
            // the GEMM, or the GEMV of a few rows.
            const bool gemm = k.kind == KernelKind::Graph;
            size_t wantInputs =
                select || delta || gemm ? 2
                : k.kind == KernelKind::SparseAttention && k.sparse.slots > 0 ? 4
                                                                              : 3;
            if ((k.kind != KernelKind::Attention &&
                 k.kind != KernelKind::SparseAttention && !select && !rows &&
                 !delta && !gemm) ||
                k.inputs.size() != wantInputs ||
                ((select || rows || delta || gemm) && k.outputs.size() != 1) ||
                (gemm != (v.ptx->abi == "gemm-v1" || v.ptx->abi == "gemv-v2")) ||
                (v.ptx->abi == "decode-v1" && k.kind != KernelKind::Attention) ||
                (v.ptx->abi.rfind("token-select-", 0) == 0 && !select) ||
                (rows != (v.ptx->abi == "dense-rows-v1")) ||
                (delta != (v.ptx->abi == "delta-correct-v1")) ||
                k.inputs.size() + k.outputs.size() + (k.promptRowsAfter ? 1 : 0) !=
                    nargs)
              throw std::runtime_error(kw + ": a PTX variant of a " +
                                       manifest::toString(k.kind) +
                                       " kernel is not supported");
            if (select && v.ptx->abi != "token-select-v4")
              throw std::runtime_error(
                  kw + ": device selection kernels of the older " +
                  (v.ptx->abi.empty() ? std::string("token-select-v1") : v.ptx->abi) +
                  " ABI (this runtime launches token-select-v4); recompile the module "
                  "with this deltaflow-compile");
            std::vector<std::string> entries = {""};
            if (select)
              entries = {"_qbar",  "_stats",       "_merge",      "_vote",
                         "_topk_cand", "_topk_thresh", "_topk_write"};
            else if (v.ptx->abi == "decode-v1" || rows)
              entries = {"_split", "_merge"};
            b.ptx = std::make_shared<PtxKernel>(
                *v.ptx, text, cudaRuntime(),
                soPath + ": kernel '" + k.name + "' (" + k.loc + ")", entries, pack);
            out.push_back(std::move(b));
            continue;
          }
          b.argv = lookup<ArgvFn>(m->handle_, v.symbol + "_argv");
          using MetaFn = const halide_filter_metadata_t *(*)();
          auto meta = lookup<MetaFn>(m->handle_, v.symbol + "_metadata");
          if (!b.argv || !meta)
            throw std::runtime_error(kw + ": symbol '" + v.symbol +
                                     "_argv' not found in " + soPath);
          b.metadata = meta();
          if (size_t(b.metadata->num_arguments) != nargs)
            throw std::runtime_error(kw + ": '" + v.symbol + "' takes " +
                                     std::to_string(b.metadata->num_arguments) +
                                     " arguments, manifest lists " +
                                     std::to_string(nargs));
          out.push_back(b);
        }
        return out;
      };
      EntryInfo::Bound bound;
      bound.variants = bind(k.variants, k.inputs.size() + k.outputs.size() +
                                            (k.promptRowsAfter ? 1 : 0));
      if (k.denseFallback)
        bound.denseFallback = bind(k.denseFallback->variants,
                                   size_t(k.argIndex(Arg::Value)) + 1 +
                                       k.outputs.size());
      e.bound.push_back(std::move(bound));
    }
    m->entries_.push_back(std::move(e));
  }
  return m;
}

Module::~Module() {
  // A GPU module's library stays loaded: a Tensor the caller still holds
  // (an output, a session's logits) may own a device allocation that its
  // deleter frees through this library's Halide runtime.
  if (handle_ && !gpu_)
    dlclose(handle_);
}

int Module::gpuDeviceCount() const {
  if (!gpu_)
    return 0;
  if (opencl_) {
    if (std::getenv("HL_OCL_PLATFORM_NAME"))
      return -1; // Halide picks the platform by name; let it check
    using GetPlatforms = int32_t (*)(uint32_t, void **, uint32_t *);
    using GetDevices = int32_t (*)(void *, uint64_t, uint32_t, void **,
                                   uint32_t *);
    auto [getPlatforms, getDevices] = driverSymbols<GetPlatforms, GetDevices>(
        "libOpenCL.so", "clGetPlatformIDs", "clGetDeviceIDs");
    if (!getPlatforms || !getDevices)
      throw std::runtime_error(path_ + ": cannot query OpenCL devices "
                               "(clGetPlatformIDs not found)");
    void *platform = nullptr;
    uint32_t n = 0;
    if (getPlatforms(1, &platform, &n) != 0 || n == 0)
      return 0;
    // As Halide's OpenCL runtime: device types from HL_OCL_DEVICE_TYPE.
    uint64_t type = 0;
    if (const char *t = std::getenv("HL_OCL_DEVICE_TYPE")) {
      std::string s = t;
      if (s.find("cpu") != std::string::npos)
        type |= 1u << 1; // CL_DEVICE_TYPE_CPU
      if (s.find("gpu") != std::string::npos)
        type |= 1u << 2; // CL_DEVICE_TYPE_GPU
      if (s.find("acc") != std::string::npos)
        type |= 1u << 3; // CL_DEVICE_TYPE_ACCELERATOR
    }
    if (type == 0)
      type = 0xFFFFFFFFu; // CL_DEVICE_TYPE_ALL
    uint32_t count = 0;
    if (getDevices(platform, type, 0, nullptr, &count) != 0)
      return 0;
    return int(count);
  }
  using Init = int (*)(unsigned);
  using GetCount = int (*)(int *);
  auto [init, getCount] = driverSymbols<Init, GetCount>("libcuda.so", "cuInit",
                                                       "cuDeviceGetCount");
  if (!init || !getCount)
    throw std::runtime_error(path_ + ": a GPU module, and this machine has no "
                             "CUDA driver (libcuda.so.1 not found)");
  if (int rc = init(0); rc != 0) {
    if (rc == 100) // CUDA_ERROR_NO_DEVICE
      return 0;
    throw std::runtime_error(path_ + ": cuInit failed (CUDA error " +
                             std::to_string(rc) + ")");
  }
  int count = 0;
  if (int rc = getCount(&count); rc != 0)
    throw std::runtime_error(path_ + ": cuDeviceGetCount failed (CUDA error " +
                             std::to_string(rc) + ")");
  return count;
}

void Module::selectDevice(int index) {
  if (!gpu_)
    throw std::runtime_error(path_ + ": GPU device " + std::to_string(index) +
                             " requested, but this is a CPU module (target " +
                             target_ + ")");
  if (index < 0)
    throw std::runtime_error(path_ + ": GPU device index must be >= 0, got " +
                             std::to_string(index));
  if (index == device_)
    return;
  if (ran_)
    throw std::runtime_error(
        path_ + ": already ran on " +
        (device_ < 0 ? std::string("the default GPU")
                     : "GPU " + std::to_string(device_)) +
        "; a loaded module stays on one device");
  int count = gpuDeviceCount();
  if (count >= 0 && index >= count)
    throw std::runtime_error(path_ + ": GPU device " + std::to_string(index) +
                             " requested, but this machine has " +
                             std::to_string(count) + " " +
                             (opencl_ ? "OpenCL" : "CUDA") + " device" +
                             (count == 1 ? "" : "s"));
  auto set = lookup<void (*)(int)>(handle_, "halide_set_gpu_device");
  if (!set)
    throw std::runtime_error(path_ + ": no halide_set_gpu_device in the "
                             "module's Halide runtime");
  set(index);
  device_ = index;
}

const EntryInfo &Module::entry(const std::string &name) const {
  std::string known;
  for (const EntryInfo &e : entries_) {
    if (e.name == name)
      return e;
    known += (known.empty() ? "" : ", ") + e.name;
  }
  throw std::runtime_error("module " + path_ + " has no entry '" + name +
                           "' (entries: " + known + ")");
}

} // namespace deltaflow::rt
