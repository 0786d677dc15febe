//===- Executor.cpp - kernels as a tbb::flow::graph -----------------------===//

#include "deltaflow/Runtime/Executor.h"

#include "HalideRuntime.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include "deltaflow/Runtime/BufferPlan.h"

#include <chrono>
#include <cstring>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>

namespace deltaflow::rt {

struct Executor::Impl {
  tbb::task_arena arena;
  explicit Impl(int threads)
      : arena(threads > 0 ? threads : tbb::task_arena::automatic) {}
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

std::string shapeOf(const std::vector<DimSpec> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") +
         (dims[i].size >= 0 ? std::to_string(dims[i].size) : std::string("?"));
  return s + "]";
}

/// Checks one input tensor against its manifest description.
void checkInput(const EntryInfo &e, const TensorSpec &spec, const Tensor &t) {
  std::string where = "entry '" + e.name + "' input '" + spec.name + "'";
  if (dtypeName(t.dtype()) != spec.dtype)
    throw std::runtime_error(
        where + ": dtype " + dtypeName(t.dtype()) + ", expected " + spec.dtype +
        (spec.dtype == "float16" && t.dtype() == DType::Float32
             ? " (float32 is not narrowed; store the tensor as float16)"
             : ""));
  bool ok = t.rank() == int(spec.shape.size());
  for (int i = 0; ok && i < t.rank(); ++i)
    ok = spec.shape[i].size < 0 || spec.shape[i].size == t.shape()[i];
  if (!ok)
    throw std::runtime_error(where + ": shape " + t.shapeString() +
                             " does not match " + shapeOf(spec.shape));
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

std::vector<int64_t> Executor::shapeOf(
    const TensorSpec &spec,
    const std::map<std::string, std::vector<int64_t>> &inputShapes) {
  std::vector<int64_t> shape;
  for (const DimSpec &d : spec.shape) {
    if (d.size >= 0) {
      shape.push_back(d.size);
      continue;
    }
    auto it = inputShapes.find(d.like);
    if (it == inputShapes.end() || d.dim < 0 ||
        d.dim >= int(it->second.size()))
      throw std::runtime_error("manifest: '" + spec.name +
                               "' has a dimension taken from unknown '" +
                               d.like + "'");
    int64_t n = it->second[size_t(d.dim)];
    shape.push_back((n + d.div - 1) / d.div + d.add);
  }
  return shape;
}

namespace {

/// Poisoned, so that a kernel that fails to write an element shows.
void poison(Tensor &t) {
  if (t.dtype() == DType::Int32)
    std::fill(t.i32(), t.i32() + t.numel(), std::numeric_limits<int32_t>::min());
  else if (t.dtype() == DType::Float16)
    std::fill(static_cast<uint16_t *>(t.raw()),
              static_cast<uint16_t *>(t.raw()) + t.numel(), uint16_t(0x7e00));
  else
    std::fill(t.f32(), t.f32() + t.numel(),
              std::numeric_limits<float>::quiet_NaN());
}

/// attn.cache_write: copies `rows` [B, H, n, D] into the last n rows of the
/// cache view [B, H, N, D] (strided: the session's cache has capacity
/// beyond N).
void cacheWrite(const KernelInfo &k, Tensor &rows, Tensor &cache) {
  const std::vector<int64_t> &r = rows.shape(), &c = cache.shape();
  if (r.size() != 4 || c.size() != 4 || r[0] != c[0] || r[1] != c[1] ||
      r[3] != c[3] || r[2] > c[2] || rows.dtype() != cache.dtype())
    throw std::runtime_error("kernel '" + k.name + "' (" + k.loc +
                             "): cannot write rows " + rows.shapeString() +
                             " into cache view " + cache.shapeString());
  const halide_buffer_t *src = rows.halideBuffer(), *dst = cache.halideBuffer();
  size_t el = dtypeSize(rows.dtype());
  const auto *s = static_cast<const uint8_t *>(rows.raw());
  auto *d = static_cast<uint8_t *>(cache.raw());
  int64_t start = c[2] - r[2];
  for (int64_t b = 0; b < r[0]; ++b)
    for (int64_t h = 0; h < r[1]; ++h)
      for (int64_t i = 0; i < r[2]; ++i) {
        const uint8_t *from = s + el * (b * src->dim[3].stride +
                                        h * src->dim[2].stride +
                                        i * src->dim[1].stride);
        uint8_t *to = d + el * (b * dst->dim[3].stride + h * dst->dim[2].stride +
                                (start + i) * dst->dim[1].stride);
        std::memcpy(to, from, size_t(r[3]) * el);
      }
}

} // namespace

std::map<std::string, Tensor>
Executor::run(const std::string &entryName,
              const std::map<std::string, Tensor> &inputs,
              RunOptions &options) {
  std::vector<KernelTiming> *profile = options.profile;
  std::map<std::string, Tensor> *temporaries = options.temporaries;
  const EntryInfo &e = module_->entry(entryName);
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

  auto dtypeOf = [](const TensorSpec &spec) {
    DType t = DType::Float32; // Module::load accepted only known dtypes
    parseDtypeName(spec.dtype, t);
    return t;
  };
  for (const TensorSpec &spec : e.outputs) {
    Tensor t(shapeOf(spec, shapes), dtypeOf(spec));
    poison(t);
    buffers[spec.name] = t;
  }
  // Temporaries: one arena, placed by liveness over the kernel graph.
  std::map<std::string, size_t> tempBytes;
  std::map<std::string, std::vector<int64_t>> tempShapes;
  for (const TensorSpec &spec : e.temporaries) {
    tempShapes[spec.name] = shapeOf(spec, shapes);
    int64_t n = 1;
    for (int64_t d : tempShapes[spec.name])
      n *= d;
    tempBytes[spec.name] = size_t(n) * dtypeSize(dtypeOf(spec));
  }
  std::vector<PlanKernel> planKernels;
  for (const KernelInfo &k : e.kernels)
    planKernels.push_back({k.inputs, k.outputs});
  BufferPlan plan = planBuffers(planKernels, tempBytes);
  options.separateBytes = plan.separateBytes;
  if (options.planBuffers && !e.temporaries.empty()) {
    options.arenaBytes = plan.arenaBytes;
    auto arena = std::make_shared<Tensor>(
        std::vector<int64_t>{int64_t((plan.arenaBytes + 3) / 4)});
    for (const TensorSpec &spec : e.temporaries) {
      Tensor t = Tensor::view(tempShapes[spec.name], dtypeOf(spec),
                              static_cast<uint8_t *>(arena->raw()) +
                                  plan.offset.at(spec.name),
                              arena);
      poison(t);
      buffers[spec.name] = t;
    }
  } else {
    options.arenaBytes = plan.separateBytes;
    for (const TensorSpec &spec : e.temporaries) {
      Tensor t(tempShapes[spec.name], dtypeOf(spec));
      poison(t);
      buffers[spec.name] = t;
    }
  }

  // Pick a variant per kernel and prepare its argument vector.
  struct Job {
    const KernelInfo *kernel;
    const KernelVariant *variant;
    std::vector<void *> args;
    std::vector<Tensor> tensors; ///< inputs then outputs
    double seconds = 0;
  };
  std::vector<Job> jobs;
  for (const KernelInfo &k : e.kernels) {
    Job job{&k, nullptr, {}, {}};
    for (const std::string &b : k.inputs)
      job.tensors.push_back(buffers.at(b));
    for (const std::string &b : k.outputs)
      job.tensors.push_back(buffers.at(b));
    for (Tensor &t : job.tensors)
      job.args.push_back(t.halideBuffer());
    if (k.variants.empty()) { // a runtime kernel (cache_write)
      jobs.push_back(std::move(job));
      continue;
    }
    const Tensor &sel = k.rowsBuffer.empty() ? buffers.at(k.inputs.at(0))
                                             : buffers.at(k.rowsBuffer);
    int64_t rows = sel.rank() > k.rowsDim ? sel.shape()[size_t(k.rowsDim)] : 1;
    for (const KernelVariant &v : k.variants)
      if (v.maxRows < 0 || rows <= v.maxRows) {
        job.variant = &v;
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
  impl_->arena.execute([&] {
    tbb::flow::graph g;
    std::vector<std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>>
        nodes;
    std::map<std::string, size_t> producer;
    std::vector<int> inDegree(jobs.size(), 0);
    for (size_t i = 0; i < jobs.size(); ++i) {
      Job *job = &jobs[i];
      nodes.push_back(std::make_unique<
                      tbb::flow::continue_node<tbb::flow::continue_msg>>(
          g, [&, job](const tbb::flow::continue_msg &) {
            {
              std::lock_guard<std::mutex> lock(errorMutex);
              if (!firstError.empty())
                return;
            }
            Module::takeHalideError();
            auto t0 = std::chrono::steady_clock::now();
            try {
              if (options.before && options.before(*job->kernel, job->tensors)) {
                job->seconds = std::chrono::duration<double>(
                                   std::chrono::steady_clock::now() - t0)
                                   .count();
                return;
              }
              if (!job->variant) {
                cacheWrite(*job->kernel, job->tensors.at(0), job->tensors.at(1));
                job->seconds = std::chrono::duration<double>(
                                   std::chrono::steady_clock::now() - t0)
                                   .count();
                return;
              }
            } catch (const std::exception &ex) {
              std::lock_guard<std::mutex> lock(errorMutex);
              if (firstError.empty())
                firstError = ex.what();
              return;
            }
            // GPU modules: an input with no device copy yet (an entry input
            // on its first use, or what a host kernel such as a selection
            // wrote) is valid on the host; Halide copies it over. Later runs
            // on the same Tensor reuse the device copy.
            for (size_t a = 0; a < job->kernel->inputs.size(); ++a) {
              auto *buf = static_cast<halide_buffer_t *>(job->args[a]);
              if (!buf->device)
                buf->flags |= halide_buffer_flag_host_dirty;
            }
            int rc = job->variant->argv(job->args.data());
            // GPU kernels run asynchronously: wait, so that the timing (and
            // any device error) belongs to this kernel.
            if (rc == 0 && module_->gpu() && !job->kernel->outputs.empty())
              rc = module_->deviceSync(static_cast<halide_buffer_t *>(
                  job->args[job->kernel->inputs.size()]));
            job->seconds = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - t0)
                               .count();
            if (rc != 0) {
              std::string msg = Module::takeHalideError();
              std::lock_guard<std::mutex> lock(errorMutex);
              if (firstError.empty())
                firstError = "kernel '" + job->kernel->name + "' (" +
                             job->kernel->loc + ") failed: " +
                             (msg.empty() ? "Halide error " + std::to_string(rc)
                                          : msg);
              return;
            }
            if (options.after) {
              try {
                options.after(*job->kernel, job->tensors);
              } catch (const std::exception &ex) {
                std::lock_guard<std::mutex> lock(errorMutex);
                if (firstError.empty())
                  firstError = ex.what();
              }
            }
          }));
      std::set<size_t> preds;
      for (const std::string &in : jobs[i].kernel->inputs) {
        auto it = producer.find(in);
        if (it != producer.end())
          preds.insert(it->second);
      }
      for (size_t p : preds)
        tbb::flow::make_edge(*nodes[p], *nodes[i]);
      inDegree[i] = int(preds.size());
      for (const std::string &out : jobs[i].kernel->outputs)
        producer[out] = i;
    }
    for (size_t i = 0; i < jobs.size(); ++i)
      if (inDegree[i] == 0)
        nodes[i]->try_put(tbb::flow::continue_msg());
    g.wait_for_all();
  });
  if (!firstError.empty())
    throw std::runtime_error(firstError);

  if (profile)
    for (const Job &j : jobs)
      profile->push_back({j.kernel->name,
                          j.variant ? j.variant->symbol : std::string("runtime"),
                          j.kernel->kind, j.seconds});

  // GPU modules leave results on the device; bring back what is returned.
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
  std::map<std::string, Tensor> outputs;
  for (const TensorSpec &spec : e.outputs)
    outputs[spec.name] = buffers.at(spec.name);
  return outputs;
}

} // namespace deltaflow::rt
