//===- Module.cpp - load OUT.so + OUT.manifest.json -----------------------===//

#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Runtime/Tensor.h"
#include "HalideParallelRuntime.h"

#include "HalideRuntime.h"
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <dlfcn.h>
#include <fstream>
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

template <typename T>
T field(const nlohmann::json &j, const char *key, const std::string &where) {
  if (!j.is_object() || !j.contains(key))
    throw std::runtime_error(where + ": missing field '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception &) {
    throw std::runtime_error(where + ": field '" + key + "' has the wrong type");
  }
}

TensorSpec parseTensor(const nlohmann::json &j, const std::string &where) {
  TensorSpec t;
  t.name = field<std::string>(j, "name", where);
  std::string w = where + " tensor '" + t.name + "'";
  t.dtype = field<std::string>(j, "dtype", w);
  if (DType parsed; !parseDtypeName(t.dtype, parsed))
    throw std::runtime_error(w + ": unsupported dtype '" + t.dtype + "'");
  for (const auto &d : field<nlohmann::json>(j, "shape", w)) {
    DimSpec ds;
    if (d.is_number_integer())
      ds.size = d.get<int64_t>();
    else if (d.is_object()) {
      ds.like = field<std::string>(d, "like", w);
      ds.dim = field<int>(d, "dim", w);
      if (d.contains("div")) {
        ds.div = field<int64_t>(d, "div", w);
        ds.add = field<int64_t>(d, "add", w);
        if (ds.div < 1 || ds.add < 0)
          throw std::runtime_error(w + ": bad derived dimension " + d.dump());
      }
    } else
      throw std::runtime_error(w + ": bad shape entry " + d.dump());
    t.shape.push_back(ds);
  }
  if (j.contains("role"))
    t.role = field<std::string>(j, "role", w);
  return t;
}

template <typename Fn> Fn lookup(void *handle, const std::string &sym) {
  dlerror();
  void *p = dlsym(handle, sym.c_str());
  return reinterpret_cast<Fn>(p);
}

} // namespace

const TensorSpec *EntryInfo::findInput(const std::string &n) const {
  for (const TensorSpec &t : inputs)
    if (t.name == n)
      return &t;
  return nullptr;
}
const TensorSpec *EntryInfo::findOutput(const std::string &n) const {
  for (const TensorSpec &t : outputs)
    if (t.name == n)
      return &t;
  return nullptr;
}

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

int Module::copyToHost(halide_buffer_t *buf) const {
  return copyToHost_ && buf->device ? copyToHost_(nullptr, buf) : 0;
}

int Module::deviceSync(halide_buffer_t *buf) const {
  return deviceSync_ && buf->device ? deviceSync_(nullptr, buf) : 0;
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

  nlohmann::json j;
  {
    std::ifstream in(manifestPath);
    if (!in)
      throw std::runtime_error(manifestPath + ": cannot open the module "
                               "manifest (expected next to " + soPath + ")");
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error &e) {
      throw std::runtime_error(manifestPath + ": malformed JSON: " + e.what());
    }
  }
  if (field<std::string>(j, "format", manifestPath) != "deltaflow-module")
    throw std::runtime_error(manifestPath + ": not a deltaflow module manifest");
  if (field<int>(j, "version", manifestPath) != 1)
    throw std::runtime_error(manifestPath + ": unsupported manifest version");
  m->target_ = field<std::string>(j, "target", manifestPath);
  // A module for another architecture: say so, rather than dlopen's ELF
  // complaint.
  if (j.contains("halide_target") && j["halide_target"].is_string()) {
    std::string ht = j["halide_target"].get<std::string>();
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
  m->gpu_ = j.contains("gpu") && j["gpu"].is_boolean() && j["gpu"].get<bool>();
  if (m->gpu_) {
    // Fail early and in one line on a machine without the GPU driver.
    std::string ht = j.value("halide_target", std::string());
    bool opencl = ht.find("opencl") != std::string::npos;
    m->opencl_ = opencl;
    if (!loadLibraryWithSoname(opencl ? "libOpenCL.so" : "libcuda.so"))
      throw std::runtime_error(
          soPath + (opencl ? ": an OpenCL module, and this machine has no "
                             "OpenCL loader (libOpenCL.so.1 not found)"
                           : ": a GPU module, and this machine has no CUDA "
                             "driver (libcuda.so.1 not found)"));
    // Keep device buffers for reuse between runs: cuMemAlloc is slow.
    if (auto reuse = lookup<int (*)(void *, bool)>(m->handle_,
                                                   "halide_reuse_device_allocations"))
      reuse(nullptr, true);
  }

  for (const auto &ej : field<nlohmann::json>(j, "entries", manifestPath)) {
    EntryInfo e;
    e.name = field<std::string>(ej, "name", manifestPath);
    std::string where = manifestPath + ": entry '" + e.name + "'";
    for (const auto &t : field<nlohmann::json>(ej, "inputs", where))
      e.inputs.push_back(parseTensor(t, where));
    for (const auto &t : field<nlohmann::json>(ej, "outputs", where))
      e.outputs.push_back(parseTensor(t, where));
    for (const auto &t : field<nlohmann::json>(ej, "temporaries", where))
      e.temporaries.push_back(parseTensor(t, where));
    if (ej.contains("value_buffers"))
      for (const auto &t : field<nlohmann::json>(ej, "value_buffers", where))
        e.valueBuffers.push_back(parseTensor(t, where));
    for (const auto &kj : field<nlohmann::json>(ej, "kernels", where)) {
      KernelInfo k;
      k.name = field<std::string>(kj, "name", where);
      std::string kw = where + " kernel '" + k.name + "'";
      k.kind = field<std::string>(kj, "kind", kw);
      k.loc = field<std::string>(kj, "loc", kw);
      k.inputs = field<std::vector<std::string>>(kj, "inputs", kw);
      k.outputs = field<std::vector<std::string>>(kj, "outputs", kw);
      if (kj.contains("deps"))
        for (size_t d : field<std::vector<size_t>>(kj, "deps", kw)) {
          if (d >= e.kernels.size())
            throw std::runtime_error(kw + ": depends on kernel " +
                                     std::to_string(d) +
                                     ", which does not precede it");
          k.deps.push_back(d);
        }
      if (kj.contains("rows")) {
        const auto &rj = kj["rows"];
        k.rowsBuffer = field<std::string>(rj, "buffer", kw);
        k.rowsDim = field<int>(rj, "dim", kw);
      }
      if (k.kind == "cache_write") {
        if (k.inputs.size() != 1 || k.outputs.size() != 1)
          throw std::runtime_error(kw + ": cache_write needs one input and "
                                        "one output");
        e.kernels.push_back(std::move(k));
        continue;
      }
      k.takesPromptRowsAfter = kj.contains("prompt_rows_after") &&
                               field<bool>(kj, "prompt_rows_after", kw);
      // Each variant's symbol must exist and take `nargs` arguments.
      auto parseVariants = [&](const nlohmann::json &list, size_t nargs) {
        std::vector<KernelVariant> out;
        for (const auto &vj : list) {
          KernelVariant v;
          v.symbol = field<std::string>(vj, "symbol", kw);
          if (vj.contains("max_rows"))
            v.maxRows = field<int64_t>(vj, "max_rows", kw);
          v.argv = lookup<ArgvFn>(m->handle_, v.symbol + "_argv");
          using MetaFn = const halide_filter_metadata_t *(*)();
          auto meta = lookup<MetaFn>(m->handle_, v.symbol + "_metadata");
          if (!v.argv || !meta)
            throw std::runtime_error(kw + ": symbol '" + v.symbol +
                                     "_argv' not found in " + soPath);
          v.metadata = meta();
          if (size_t(v.metadata->num_arguments) != nargs)
            throw std::runtime_error(kw + ": '" + v.symbol + "' takes " +
                                     std::to_string(v.metadata->num_arguments) +
                                     " arguments, manifest lists " +
                                     std::to_string(nargs));
          out.push_back(v);
        }
        return out;
      };
      k.variants = parseVariants(field<nlohmann::json>(kj, "variants", kw),
                                 k.inputs.size() + k.outputs.size() +
                                     (k.takesPromptRowsAfter ? 1 : 0));
      if (kj.contains("dense_fallback")) {
        const auto &fj = kj["dense_fallback"];
        if (k.kind != "sparse_attention" || k.inputs.size() < 3)
          throw std::runtime_error(kw + ": only sparse_attention kernels have "
                                        "a dense fallback");
        k.denseFallbackMaxKeys = field<int64_t>(fj, "max_keys", kw);
        k.denseFallback = parseVariants(field<nlohmann::json>(fj, "variants", kw),
                                        3 + k.outputs.size());
        if (k.denseFallback.empty())
          throw std::runtime_error(kw + ": dense_fallback has no variants");
      }
      if (k.variants.empty())
        throw std::runtime_error(kw + ": no variants");
      e.kernels.push_back(std::move(k));
    }
    m->entries_.push_back(std::move(e));
  }
  return m;
}

Module::~Module() {
  if (handle_)
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
    void *cl = loadLibraryWithSoname("libOpenCL.so");
    auto getPlatforms = cl ? lookup<GetPlatforms>(cl, "clGetPlatformIDs") : nullptr;
    auto getDevices = cl ? lookup<GetDevices>(cl, "clGetDeviceIDs") : nullptr;
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
  void *cuda = loadLibraryWithSoname("libcuda.so");
  auto init = cuda ? lookup<Init>(cuda, "cuInit") : nullptr;
  auto getCount = cuda ? lookup<GetCount>(cuda, "cuDeviceGetCount") : nullptr;
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
