//===- Executor.cpp - kernels as a tbb::flow::graph -----------------------===//

#include "deltaflow/Runtime/Executor.h"
#include "PtxLauncher.h"

#include "HalideRuntime.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include "deltaflow/Common/KernelGraph.h"

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstring>
#include <cmath>
#include <limits>
#include <mutex>
#include <functional>
#include <stdexcept>

namespace deltaflow::rt {

namespace {
/// An entry's kernels as a flow graph: node i runs `body(i)` after the
/// nodes of its manifest `deps`. Built inside the executor's arena (a graph
/// runs in the arena it was built in) and reused by every run of the entry.
struct FlowGraph {
  using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
  tbb::flow::graph g;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<size_t> roots;
  std::function<void(size_t)> body; ///< set by each run

  explicit FlowGraph(const EntryInfo &e) {
    for (size_t i = 0; i < e.kernels.size(); ++i) {
      nodes.push_back(std::make_unique<Node>(
          g, [this, i](const tbb::flow::continue_msg &) { body(i); }));
      for (size_t p : e.kernels[i].deps)
        tbb::flow::make_edge(*nodes[p], *nodes[i]);
      if (e.kernels[i].deps.empty())
        roots.push_back(i);
    }
  }
  void run() {
    for (size_t i : roots)
      nodes[i]->try_put(tbb::flow::continue_msg());
    g.wait_for_all();
  }
};

/// What does not change between runs of an entry: its graph, the planner's
/// view of its kernels, and the producer of each buffer.
struct EntryState {
  std::mutex busy; ///< held by the run using `graph`
  std::unique_ptr<FlowGraph> graph;
  std::vector<PlanKernel> planKernels;
  std::map<std::string, size_t> producerOf;
  /// The last buffer plan and the temporaries' sizes it was made for
  /// (shared: a run keeps its plan while another replaces it).
  std::map<std::string, size_t> planSizes;
  std::shared_ptr<const BufferPlan> plan;
  /// The last run's outputs, and its temporaries' arena (host memory),
  /// kept for the next run (guarded by Impl::statesMutex). A run takes one
  /// only when its shape and type match and nothing outside holds it: fresh
  /// host memory costs page faults on first touch (118 ms of a 32K
  /// prefill's 175 ms call on the H200 machine, 2026-12-02), and a GPU
  /// module's output keeps its device allocation. Every output is written
  /// by its kernel each run (a skipped selection's are temporaries).
  std::map<std::string, Tensor> spare;
  std::shared_ptr<Tensor> spareArena;
};
} // namespace

struct Executor::Impl {
  tbb::task_arena arena;
  std::mutex statesMutex;
  std::map<std::string, std::unique_ptr<EntryState>> states;
  explicit Impl(int threads)
      : arena(threads > 0 ? threads : tbb::task_arena::automatic) {}

  EntryState &state(const EntryInfo &e) {
    std::lock_guard<std::mutex> lock(statesMutex);
    std::unique_ptr<EntryState> &st = states[e.name];
    if (!st) {
      st = std::make_unique<EntryState>();
      for (size_t i = 0; i < e.kernels.size(); ++i) {
        const KernelInfo &k = e.kernels[i];
        st->planKernels.push_back({k.inputs, k.outputs, k.deps});
        for (const std::string &b : k.outputs)
          st->producerOf[b] = i;
      }
    }
    return *st;
  }
};

Executor::Executor(std::shared_ptr<Module> module, int threads, int device)
    : module_(std::move(module)), impl_(std::make_unique<Impl>(threads)) {
  if (device >= 0 && module_->gpu())
    module_->selectDevice(device);
  else if (device < -1)
    throw std::runtime_error("GPU device index must be >= 0, got " +
                             std::to_string(device));
  impl_->arena.initialize();
}

Executor::~Executor() = default;

int Executor::concurrency() const { return impl_->arena.max_concurrency(); }

namespace {

/// Checks one input tensor against its manifest description.
void checkInput(const EntryInfo &e, const TensorSpec &spec, const Tensor &t) {
  std::string where = "entry '" + e.name + "' input '" + spec.name + "'";
  if (t.dtype() != spec.dtype)
    throw std::runtime_error(
        where + ": dtype " + dtypeName(t.dtype()) + ", expected " +
        dtypeName(spec.dtype) +
        (spec.dtype == DType::Float16 && t.dtype() == DType::Float32
             ? " (float32 is not narrowed; store the tensor as float16)"
         : spec.dtype == DType::BFloat16
             ? " (NumPy has no bfloat16: deltaflow-run takes a float32 .npy "
               "and rounds it)"
             : ""));
  bool ok = t.rank() == int(spec.shape.size());
  for (int i = 0; ok && i < t.rank(); ++i)
    ok = spec.shape[i].size < 0 || spec.shape[i].size == t.shape()[i];
  if (!ok)
    throw std::runtime_error(where + ": shape " + t.shapeString() +
                             " does not match " + spec.shapeString());
  for (int64_t d : t.shape())
    if (d == 0)
      throw std::runtime_error(where + ": shape " + t.shapeString() +
                               " has an empty dimension");
}

} // namespace

std::map<std::string, Tensor>
Executor::run(const std::string &entryName,
              const std::map<std::string, Tensor> &inputs,
              std::vector<KernelTiming> *profile,
              std::map<std::string, Tensor> *temporaries) {
  RunOptions options;
  options.profile = profile;
  options.temporaries = temporaries;
  return run(entryName, inputs, options);
}

namespace {

/// Poisoned, so that a kernel that fails to write an element shows.
void poison(Tensor &t) {
  if (t.dtype() == DType::Int32)
    std::fill(t.i32(), t.i32() + t.numel(), std::numeric_limits<int32_t>::min());
  else if (t.dtype() == DType::Float16 || t.dtype() == DType::BFloat16)
    std::fill(static_cast<uint16_t *>(t.raw()),
              static_cast<uint16_t *>(t.raw()) + t.numel(),
              uint16_t(t.dtype() == DType::Float16 ? 0x7e00 : 0x7fc0));
  else
    std::fill(t.f32(), t.f32() + t.numel(),
              std::numeric_limits<float>::quiet_NaN());
}

/// Marks a buffer written on the host: the next GPU kernel that reads it
/// copies these bytes over its device copy.
void markHostWritten(Tensor &t) {
  halide_buffer_t *b = t.halideBuffer();
  b->flags = (b->flags | halide_buffer_flag_host_dirty) &
             ~uint64_t(halide_buffer_flag_device_dirty);
}

/// Throws unless `rows` [B, H, n, D] fit the cache view [B, H, Nk >= n, D].
void checkCacheRows(const KernelInfo &k, const Tensor &rows, const Tensor &cache) {
  const std::vector<int64_t> &r = rows.shape(), &c = cache.shape();
  if (r.size() != 4 || c.size() != 4 || r[0] != c[0] || r[1] != c[1] ||
      r[3] != c[3] || r[2] > c[2])
    throw std::runtime_error("kernel '" + k.name + "' (" + k.loc + "): cannot write rows " +
                             rows.shapeString() + " into cache view " + cache.shapeString());
}

/// The new rows a GPU kernel left on the device, brought to their host
/// bytes (a no-op when those are current).
void newRowsToHost(const KernelInfo &k, Tensor &rows) {
  halide_buffer_t *src = rows.halideBuffer();
  if (src->device && (src->flags & halide_buffer_flag_device_dirty) &&
      src->device_interface->copy_to_host(nullptr, src) != 0)
    throw std::runtime_error("kernel '" + k.name + "': copying the new rows from the device "
                             "failed: " + Module::takeHalideError());
}

/// attn.cache_write: copies `rows` [B, H, n, D] into the last n rows of the
/// cache view [B, H, N, D] (strided: the session's cache has capacity
/// beyond N). f32 rows into an f16 cache are rounded to nearest even.
void cacheWrite(const KernelInfo &k, Tensor &rows, Tensor &cache) {
  const std::vector<int64_t> &r = rows.shape(), &c = cache.shape();
  const bool narrow =
      rows.dtype() == DType::Float32 && cache.dtype() == DType::Float16;
  std::string where = "kernel '" + k.name + "' (" + k.loc + ")";
  if (rows.dtype() != cache.dtype() && !narrow)
    throw std::runtime_error(where + ": cannot write " + dtypeName(rows.dtype()) +
                             " rows into a " + dtypeName(cache.dtype()) +
                             " KV cache (the module and the cache disagree "
                             "on the K/V dtype)");
  checkCacheRows(k, rows, cache);
  const halide_buffer_t *src = rows.halideBuffer(), *dst = cache.halideBuffer();
  size_t inEl = dtypeSize(rows.dtype()), outEl = dtypeSize(cache.dtype());
  const auto *s = static_cast<const uint8_t *>(rows.raw());
  auto *d = static_cast<uint8_t *>(cache.raw());
  int64_t start = c[2] - r[2];
  for (int64_t b = 0; b < r[0]; ++b)
    for (int64_t h = 0; h < r[1]; ++h)
      for (int64_t i = 0; i < r[2]; ++i) {
        const uint8_t *from = s + inEl * (b * src->dim[3].stride +
                                          h * src->dim[2].stride +
                                          i * src->dim[1].stride);
        uint8_t *to = d + outEl * (b * dst->dim[3].stride +
                                   h * dst->dim[2].stride +
                                   (start + i) * dst->dim[1].stride);
        if (!narrow) {
          std::memcpy(to, from, size_t(r[3]) * inEl);
          continue;
        }
        const auto *f = reinterpret_cast<const float *>(from);
        auto *hv = reinterpret_cast<uint16_t *>(to);
        for (int64_t e = 0; e < r[3]; ++e)
          hv[e] = floatToHalf(f[e]);
      }
}

/// cacheWrite for a cache on the device (a CUDA session's; its view
/// aliases the session's allocation): the rows go to positions
/// [Nk - rows, Nk) of the device cache, device to device when they are
/// there in the cache's dtype (Halide's buffer_copy), otherwise through the
/// host (cacheWrite, then that region alone copied over). The cache's
/// older positions exist only on the device, so it stays device-dirty.
void deviceCacheWrite(const Module &module, const KernelInfo &k, Tensor &rows,
                      Tensor &cache) {
  halide_buffer_t *dst = cache.halideBuffer(), *src = rows.halideBuffer();
  const halide_device_interface_t *dev = dst->device_interface;
  const std::vector<int64_t> &r = rows.shape(), &c = cache.shape();
  std::string where = "kernel '" + k.name + "' (" + k.loc + ")";
  checkCacheRows(k, rows, cache);
  // The region: Halide dimension 1 (positions) from Nk - rows.
  const int32_t start = int32_t(c[2] - r[2]);
  std::vector<halide_dimension_t> dims(dst->dim, dst->dim + dst->dimensions);
  dims[1].min += start;
  dims[1].extent = int32_t(r[2]);
  halide_buffer_t region = *dst;
  region.dim = dims.data();
  region.device = 0;
  region.device_interface = nullptr;
  region.flags = 0;
  region.host = dst->host ? dst->host + int64_t(start) * dst->dim[1].stride * dst->type.bytes()
                          : nullptr;
  if (dev->device_crop(nullptr, dst, &region) != 0)
    throw std::runtime_error(where + ": cannot address positions " + std::to_string(start) +
                             ".." + std::to_string(c[2] - 1) + " of the device KV cache: " +
                             Module::takeHalideError());
  struct Release {
    halide_buffer_t *b;
    ~Release() {
      if (b->device)
        b->device_interface->device_release_crop(nullptr, b);
    }
  } release{&region};
  const bool onDevice = src->device && src->device_interface == dev &&
                        !(src->flags & halide_buffer_flag_host_dirty);
  int rc = 0;
  // Dense rows [B, H, n, D] in the cache's dtype, on the device: one 2-D
  // copy (B * H rows, the cache's head stride apart) where the driver has
  // it (CUDA), instead of buffer_copy's copy per head.
  // The cache's layout as the launcher packs it ([B, H, cap, D]: rows
  // contiguous, heads `srcPitchBytes` apart); another layout takes
  // buffer_copy.
  std::optional<PtxPackPlan> layout;
  try {
    layout = planPack(cache);
  } catch (const std::exception &) {
  }
  const size_t rowBytes = size_t(r[2] * r[3]) * dst->type.bytes();
  if (onDevice && rows.dtype() == cache.dtype() && rows.dense() && layout &&
      module.cudaRuntime() && region.device &&
      deviceCopy2D(*module.cudaRuntime(), where, region.device, layout->srcPitchBytes,
                   src->device, rowBytes, rowBytes, layout->height)) {
    // queued on stream 0, before the kernels that read the cache
  } else if (onDevice && rows.dtype() == cache.dtype()) {
    // buffer_copy copies dst's coordinates from src, which must hold them:
    // the rows, renumbered to start at position `start`.
    std::vector<halide_dimension_t> rowDims(src->dim, src->dim + src->dimensions);
    rowDims[1].min += start;
    halide_buffer_t from = *src;
    from.dim = rowDims.data();
    rc = dev->buffer_copy(nullptr, &from, dev, &region);
  } else {
    newRowsToHost(k, rows);
    cacheWrite(k, rows, cache); // the host bytes of the region
    region.flags = halide_buffer_flag_host_dirty;
    rc = dev->copy_to_device(nullptr, &region, dev);
  }
  if (rc != 0)
    throw std::runtime_error(where + ": writing " + rows.shapeString() +
                             " rows into the device KV cache failed: " +
                             Module::takeHalideError());
  dst->flags = (dst->flags | halide_buffer_flag_device_dirty) &
               ~uint64_t(halide_buffer_flag_host_dirty);
}

} // namespace

std::map<std::string, Tensor>
Executor::run(const std::string &entryName,
              const std::map<std::string, Tensor> &inputs,
              RunOptions &options) {
  std::vector<KernelTiming> *profile = options.profile;
  std::map<std::string, Tensor> *temporaries = options.temporaries;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point runStart = Clock::now();
  auto since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  const EntryInfo &e = module_->entry(entryName);
  EntryState &state = impl_->state(e);
  std::map<std::string, Tensor> buffers;
  for (const auto &[name, t] : inputs)
    if (!e.findInput(name))
      throw std::runtime_error("entry '" + e.name + "' has no input '" + name +
                               "'");
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const TensorSpec &spec : e.inputs) {
    auto it = inputs.find(spec.name);
    if (it == inputs.end())
      throw std::runtime_error("entry '" + e.name + "': missing input '" +
                               spec.name + "'");
    checkInput(e, spec, it->second);
    buffers[spec.name] = it->second;
    shapes[spec.name] = it->second.shape();
  }

  // A buffer of the last run, if it can serve again (EntryState::spare).
  auto takeSpare = [&](const std::string &name, const std::vector<int64_t> &shape,
                       DType dtype) -> Tensor {
    std::lock_guard<std::mutex> lock(impl_->statesMutex);
    auto it = state.spare.find(name);
    if (it == state.spare.end())
      return Tensor();
    Tensor t = std::move(it->second);
    state.spare.erase(it);
    return t.sole() && t.dense() && t.shape() == shape && t.dtype() == dtype ? t : Tensor();
  };
  // Outputs start as NaN (INT32_MIN), so that an element no kernel writes
  // shows. A GPU module's reused output is not poisoned again: its kernels
  // write the device copy, which is what comes back.
  for (const TensorSpec &spec : e.outputs) {
    std::vector<int64_t> shape = manifest::resolveShape(spec, shapes);
    Tensor t = takeSpare(spec.name, shape, spec.dtype);
    bool reused = t.defined();
    if (!reused)
      t = Tensor(shape, spec.dtype);
    if (!reused || !module_->gpu())
      poison(t);
    buffers[spec.name] = t;
  }
  // Temporaries: one arena, placed by liveness over the kernel graph (the
  // plan is kept while the temporaries' sizes stay the same).
  std::map<std::string, size_t> tempBytes;
  std::map<std::string, std::vector<int64_t>> tempShapes;
  for (const TensorSpec &spec : e.temporaries) {
    tempShapes[spec.name] = manifest::resolveShape(spec, shapes);
    uint64_t bytes = dtypeSize(spec.dtype);
    for (int64_t d : tempShapes[spec.name])
      if (__builtin_mul_overflow(bytes, uint64_t(d), &bytes))
        throw std::runtime_error(
            "entry '" + e.name + "' temporary '" + spec.name + "': shape " +
            rt::shapeString(tempShapes[spec.name]) + " is too large");
    tempBytes[spec.name] = bytes;
  }
  std::shared_ptr<const BufferPlan> planned;
  {
    std::lock_guard<std::mutex> lock(impl_->statesMutex);
    if (!state.plan || state.planSizes != tempBytes) {
      state.plan = std::make_shared<const BufferPlan>(
          planBuffers(state.planKernels, tempBytes));
      state.planSizes = tempBytes;
    }
    planned = state.plan;
  }
  const BufferPlan &plan = *planned;
  options.separateBytes = plan.separateBytes;
  // Temporaries returned to the caller get their own memory: in the arena a
  // later kernel may reuse theirs.
  std::shared_ptr<Tensor> arena;
  if (options.planBuffers && !temporaries && !e.temporaries.empty()) {
    options.arenaBytes = plan.arenaBytes;
    const std::vector<int64_t> words{int64_t((plan.arenaBytes + 3) / 4)};
    {
      std::lock_guard<std::mutex> lock(impl_->statesMutex);
      if (state.spareArena && state.spareArena.use_count() == 1 &&
          state.spareArena->sole() && state.spareArena->shape() == words)
        arena = std::move(state.spareArena);
      state.spareArena.reset();
    }
    if (!arena)
      arena = std::make_shared<Tensor>(words);
    // A CUDA module's temporaries live in a device arena of the same plan,
    // allocated once with the host arena and kept with it: each run's views
    // alias it (before, every view got its own cuMemAlloc, one per value,
    // and its cuMemFree, which waits for the device, at the end of the run).
    // Their host bytes are not poisoned: the kernels write the device copy.
    // An arena beyond 2^31 words (8 GiB) has no Halide buffer: its views
    // then get a device allocation each, as before (correct, and much
    // slower; not yet lifted). Module::deviceAllocate throws when the GPU
    // is out of memory.
    const bool deviceArena =
        module_->gpu() && words[0] <= INT32_MAX &&
        (arena->halideBuffer()->device || module_->deviceAllocate(arena->halideBuffer()));
    if (deviceArena) // the arena itself is never read or copied back
      arena->halideBuffer()->flags = 0;
    for (const TensorSpec &spec : e.temporaries) {
      Tensor t = Tensor::view(tempShapes[spec.name], spec.dtype,
                              static_cast<uint8_t *>(arena->raw()) +
                                  plan.offset.at(spec.name),
                              arena);
      if (deviceArena)
        t = t.aliasDevice(*arena, plan.offset.at(spec.name));
      else
        poison(t);
      buffers[spec.name] = t;
    }
  } else {
    // Separate temporaries (returned to the caller, or unplanned) are new
    // each run: a kernel skipped this run (the dense fallback, a selection
    // cache hit) must leave its poison, not the last run's values, and a
    // host write into one must not miss a device copy.
    options.arenaBytes = plan.separateBytes;
    for (const TensorSpec &spec : e.temporaries) {
      Tensor t(tempShapes[spec.name], spec.dtype);
      poison(t);
      buffers[spec.name] = t;
    }
  }

  // Dense fallback: a sparse attention kernel whose context fits its pattern
  // (keys <= sinks + slots + window) is exact attention, so it runs its
  // dense variant. A selection or Δ rows kernel that feeds only such
  // kernels is skipped, and a Δ combination over such a kernel's output
  // becomes a copy of it.
  enum class Mode { Run, Fallback, Skip, Copy };
  const std::map<std::string, size_t> &producerOf = state.producerOf;
  std::vector<Mode> modes(e.kernels.size(), Mode::Run);
  for (size_t i = 0; i < e.kernels.size() && options.denseFallback; ++i) {
    const KernelInfo &k = e.kernels[i];
    if (k.denseFallback &&
        buffers.at(k.buffer(Arg::Key)).shape().at(2) <= k.denseFallback->maxKeys)
      modes[i] = Mode::Fallback;
  }
  for (size_t i = 0; i < e.kernels.size(); ++i) {
    const KernelInfo &k = e.kernels[i];
    if (k.kind != KernelKind::DeltaCorrect)
      continue;
    auto it = producerOf.find(k.buffer(Arg::Sparse));
    if (it != producerOf.end() && modes[it->second] == Mode::Fallback)
      modes[i] = Mode::Copy;
  }
  for (size_t i = 0; i < e.kernels.size(); ++i) {
    const KernelInfo &k = e.kernels[i];
    if (k.kind != KernelKind::Select && k.kind != KernelKind::DenseRows)
      continue;
    bool used = false, allFallback = true;
    for (size_t j = 0; j < e.kernels.size(); ++j) {
      const KernelInfo &reader = e.kernels[j];
      for (size_t a = 0; a < reader.inputs.size(); ++a) {
        if (std::find(k.outputs.begin(), k.outputs.end(), reader.inputs[a]) ==
            k.outputs.end())
          continue;
        used = true;
        // The fallback variant reads only q, k, v; the copy only the sparse
        // output.
        bool unread =
            (modes[j] == Mode::Fallback && a > size_t(reader.argIndex(Arg::Value))) ||
            (modes[j] == Mode::Copy && a != size_t(reader.argIndex(Arg::Sparse)));
        allFallback &= unread;
      }
    }
    // An entry output must be written: such a kernel still runs.
    bool entryOutput = false;
    for (const std::string &b : k.outputs)
      entryOutput |= e.findOutput(b) != nullptr;
    if (used && allFallback && !entryOutput)
      modes[i] = Mode::Skip;
  }
  options.denseFallbacks = 0;
  for (Mode m : modes)
    options.denseFallbacks += m == Mode::Fallback;

  // Pick a variant per kernel and prepare its argument vector.
  struct Job {
    const KernelInfo *kernel;
    const manifest::Variant *variant = nullptr;
    ArgvFn argv = nullptr;
    PtxKernel *ptx = nullptr; ///< set: a tensor-core kernel (no argv)
    std::vector<void *> args;
    std::vector<Tensor> tensors; ///< inputs then outputs
    double seconds = 0;
    Mode mode = Mode::Run;
  };
  int32_t rowsAfter = int32_t(std::clamp<int64_t>(options.promptRowsAfter, 0,
                                                   int64_t(1) << 30));
  std::vector<Job> jobs;
  for (size_t ki = 0; ki < e.kernels.size(); ++ki) {
    const KernelInfo &k = e.kernels[ki];
    Job job;
    job.kernel = &k;
    job.mode = modes[ki];
    for (const std::string &b : k.inputs)
      job.tensors.push_back(buffers.at(b));
    for (const std::string &b : k.outputs)
      job.tensors.push_back(buffers.at(b));
    const size_t fallbackInputs = size_t(k.argIndex(Arg::Value)) + 1;
    for (size_t a = 0; a < job.tensors.size(); ++a) {
      if (job.mode == Mode::Fallback && a >= fallbackInputs && a < k.inputs.size())
        continue; // the dense variant takes q, k, v and the outputs
      if (a == k.inputs.size() && k.promptRowsAfter)
        job.args.push_back(&rowsAfter);
      job.args.push_back(job.tensors[a].halideBuffer());
    }
    if (k.variants.empty() || job.mode == Mode::Skip || job.mode == Mode::Copy) {
      jobs.push_back(std::move(job)); // runtime kernels, or no kernel at all
      continue;
    }
    // Variants are chosen by the rows of the first input (or of the first
    // output, for a kernel computed from constants alone).
    const Tensor &sel = k.rows            ? buffers.at(k.rows->buffer)
                        : k.inputs.empty() ? buffers.at(k.outputs.at(0))
                                           : buffers.at(k.inputs[0]);
    int rowsDim = k.rows ? k.rows->dim : 2;
    int64_t rows = sel.rank() > rowsDim ? sel.shape()[size_t(rowsDim)] : 1;
    const bool fallback = job.mode == Mode::Fallback;
    const std::vector<manifest::Variant> &variants =
        fallback ? k.denseFallback->variants : k.variants;
    const std::vector<KernelVariant> &bound =
        fallback ? e.bound[ki].denseFallback : e.bound[ki].variants;
    for (size_t v = 0; v < variants.size(); ++v)
      if (variants[v].maxRows < 0 || rows <= variants[v].maxRows) {
        job.variant = &variants[v];
        job.argv = bound[v].argv;
        job.ptx = bound[v].ptx.get();
        break;
      }
    if (!job.variant)
      throw std::runtime_error("kernel '" + k.name + "': no variant for " +
                               std::to_string(rows) + " rows");
    jobs.push_back(std::move(job));
  }

  module_->ran_ = true; // the GPU context (if any) is made on this device
  std::mutex errorMutex;
  std::string firstError;
  auto fail = [&](const std::string &msg) {
    std::lock_guard<std::mutex> lock(errorMutex);
    if (firstError.empty())
      firstError = msg;
  };
  /// Inside a catch block: records the exception in flight.
  auto failWithCurrentException = [&](const KernelInfo &k) {
    try {
      throw;
    } catch (const std::exception &ex) {
      fail(ex.what());
    } catch (...) {
      fail("kernel '" + k.name + "': unknown exception");
    }
  };
  const bool syncEachKernel = module_->gpu() && options.syncEachKernel;
  auto runJob = [&](size_t i) {
    Job *job = &jobs[i];
    {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (!firstError.empty())
        return;
    }
    Module::takeHalideError();
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      job->seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
    };
    try {
      if (job->mode == Mode::Copy) {
        // Δ over an exact (dense fallback) output: that output.
        Tensor &from = job->tensors.at(size_t(job->kernel->argIndex(Arg::Sparse)));
        Tensor &to = job->tensors.at(size_t(job->kernel->argIndex(Arg::Out)));
        halide_buffer_t *src = from.halideBuffer();
        if (from.bytes() != to.bytes() ||
            (src->device && (src->flags & halide_buffer_flag_device_dirty) &&
             module_->copyToHost(src) != 0))
          throw std::runtime_error("kernel '" + job->kernel->name +
                                   "': cannot copy " + from.shapeString() +
                                   " into " + to.shapeString());
        std::memcpy(to.raw(), from.raw(), to.bytes());
        to.halideBuffer()->flags |= halide_buffer_flag_host_dirty;
      }
      if (job->mode == Mode::Skip || job->mode == Mode::Copy) {
        elapsed();
        return;
      }
      if (options.before && options.before(*job->kernel, job->tensors)) {
        // The hook wrote the outputs on the host (a selection-cache hit):
        // a device kernel that reads them must get those bytes, not what a
        // device copy (the arena's) last held.
        for (size_t a = job->kernel->inputs.size(); a < job->tensors.size(); ++a)
          markHostWritten(job->tensors[a]);
        elapsed();
        return;
      }
      if (!job->variant) {
        Tensor &rows = job->tensors.at(size_t(job->kernel->argIndex(Arg::NewRows)));
        Tensor &cache = job->tensors.at(size_t(job->kernel->argIndex(Arg::Cache)));
        if (cache.halideBuffer()->device) {
          deviceCacheWrite(*module_, *job->kernel, rows, cache);
          if (syncEachKernel && module_->deviceSync(cache.halideBuffer()) != 0)
            throw std::runtime_error("kernel '" + job->kernel->name +
                                     "': writing the device KV cache failed: " +
                                     Module::takeHalideError());
          elapsed();
          return;
        }
        // A GPU module: the new rows come from a GPU kernel (bring them to
        // the host cache), and the cache's device copy, if any, is then
        // stale (the next kernel copies the host's).
        newRowsToHost(*job->kernel, rows);
        cacheWrite(*job->kernel, rows, cache);
        markHostWritten(cache);
        elapsed();
        return;
      }
    } catch (...) {
      failWithCurrentException(*job->kernel);
      return;
    }
    // GPU modules: an input with no device copy yet (an entry input on its
    // first use, or what a host kernel such as a selection wrote) is valid
    // on the host; Halide copies it over. Later runs on the same Tensor
    // reuse the device copy. (job->args may hold a scalar, or skip inputs a
    // fallback does not read; the tensors are inputs then outputs.)
    for (size_t a = 0; a < job->kernel->inputs.size(); ++a) {
      halide_buffer_t *buf = job->tensors[a].halideBuffer();
      if (!buf->device)
        buf->flags |= halide_buffer_flag_host_dirty;
    }
    int rc = 0;
    if (job->ptx) {
      try {
        job->ptx->launch(*job->kernel, job->tensors, rowsAfter);
      } catch (...) {
        failWithCurrentException(*job->kernel);
        return;
      }
    } else {
      rc = job->argv(job->args.data());
    }
    // GPU kernels run asynchronously, in launch order on one stream. With
    // --profile, wait, so that the timing (and any device error) belongs
    // to this kernel; otherwise the run waits once, after its last kernel
    // (a decode step of a small model is mostly launches: a wait per
    // kernel left the GPU idle between them).
    if (rc == 0 && syncEachKernel && !job->kernel->outputs.empty())
      rc = module_->deviceSync(
          job->tensors.at(job->kernel->inputs.size()).halideBuffer());
    elapsed();
    if (rc != 0) {
      std::string msg = Module::takeHalideError();
      fail("kernel '" + job->kernel->name + "' (" + job->kernel->loc +
           ") failed: " +
           (msg.empty() ? "Halide error " + std::to_string(rc) : msg));
      return;
    }
    if (options.after) {
      try {
        options.after(*job->kernel, job->tensors);
      } catch (...) {
        failWithCurrentException(*job->kernel);
      }
    }
  };
  const double setupSeconds = since(runStart);
  impl_->arena.execute([&] {
    // The entry's graph, built on its first run; a concurrent run of the
    // same entry builds its own.
    std::unique_lock<std::mutex> lock(state.busy, std::try_to_lock);
    std::unique_ptr<FlowGraph> own;
    FlowGraph *graph = nullptr;
    if (lock.owns_lock()) {
      if (!state.graph)
        state.graph = std::make_unique<FlowGraph>(e);
      graph = state.graph.get();
    } else {
      own = std::make_unique<FlowGraph>(e);
      graph = own.get();
    }
    graph->body = runJob;
    try {
      graph->run();
    } catch (...) {
      // A graph that unwound may hold partial predecessor counts: never
      // reuse it.
      graph->body = nullptr;
      if (!own)
        state.graph.reset();
      throw;
    }
    graph->body = nullptr;
  });
  if (!firstError.empty())
    throw std::runtime_error(firstError);
  if (module_->gpu() && !syncEachKernel) {
    // One wait for the whole run: a kernel's device error surfaces here
    // (CUDA_LAUNCH_BLOCKING=1 or --profile names the kernel).
    for (Job &j : jobs) {
      if (j.kernel->outputs.empty())
        continue;
      halide_buffer_t *buf = j.tensors.at(j.kernel->inputs.size()).halideBuffer();
      if (!buf->device)
        continue;
      if (module_->deviceSync(buf) != 0) {
        std::string msg = Module::takeHalideError();
        throw std::runtime_error(
            "entry '" + e.name + "': a GPU kernel failed: " +
            (msg.empty() ? std::string("device error") : msg) +
            " (kernels run asynchronously; CUDA_LAUNCH_BLOCKING=1 or "
            "--profile names the kernel)");
      }
      break;
    }
  }

  if (profile)
    for (const Job &j : jobs)
      profile->push_back(
          {j.kernel->name,
           j.mode == Mode::Skip   ? std::string("skipped (dense fallback)")
           : j.mode == Mode::Copy ? std::string("copy (dense fallback)")
           : j.variant ? (j.mode == Mode::Fallback ? "dense fallback: " : "") +
                             j.variant->symbol +
                             (!j.ptx ? ""
                              : j.kernel->kind == KernelKind::Select
                                  ? " [device selection, PTX]"
                              : j.variant->ptx && j.variant->ptx->abi == "decode-v1"
                                  ? " [split-K decode, PTX]"
                              : j.variant->ptx && j.variant->ptx->abi == "dense-rows-v1"
                                  ? " [tensor cores, split-K, PTX]"
                              : j.variant->ptx && j.variant->ptx->abi == "delta-correct-v1"
                                  ? " [delta correction, PTX]"
                              : j.variant->ptx && j.variant->ptx->abi == "gemm-v1"
                                  ? " [tensor-core GEMM, PTX]"
                              : j.variant->ptx && j.variant->ptx->abi == "gemv-v2"
                                  ? " [GEMV, PTX]"
                                  : " [tensor cores, PTX]")
                       : std::string("runtime"),
           manifest::toString(j.kernel->kind), j.seconds});

  // GPU modules leave results on the device; bring back what is returned.
  const Clock::time_point outputsStart = Clock::now();
  auto toHost = [&](const TensorSpec &spec, const char *what) -> Tensor & {
    Tensor &t = buffers.at(spec.name);
    halide_buffer_t *buf = t.halideBuffer();
    if (buf->device && (buf->flags & halide_buffer_flag_device_dirty) &&
        module_->copyToHost(buf) != 0)
      throw std::runtime_error("entry '" + e.name + "': copying " + what + " '" +
                               spec.name + "' from the device failed: " +
                               Module::takeHalideError());
    return t;
  };
  for (const TensorSpec &spec : e.outputs)
    toHost(spec, "output");
  if (temporaries)
    for (const TensorSpec &spec : e.temporaries)
      (*temporaries)[spec.name] = toHost(spec, "temporary");
  if (options.hostPhases)
    *options.hostPhases = {setupSeconds, since(outputsStart)};
  {
    std::lock_guard<std::mutex> lock(impl_->statesMutex);
    for (const TensorSpec &spec : e.outputs)
      state.spare[spec.name] = buffers.at(spec.name);
    // The arena (host memory, and a CUDA module's device arena): its views
    // are new each run.
    state.spareArena = arena;
  }
  std::map<std::string, Tensor> outputs;
  for (const TensorSpec &spec : e.outputs)
    outputs[spec.name] = buffers.at(spec.name);
  return outputs;
}

} // namespace deltaflow::rt
