//===- Executor.cpp - kernels as a tbb::flow::graph -----------------------===//

#include "deltaflow/Runtime/Executor.h"

#include "HalideRuntime.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include <chrono>
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

Executor::Executor(std::shared_ptr<Module> module, int threads)
    : module_(std::move(module)), impl_(std::make_unique<Impl>(threads)) {
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
    throw std::runtime_error(where + ": dtype " + dtypeName(t.dtype()) +
                             ", expected " + spec.dtype);
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
  const EntryInfo &e = module_->entry(entryName);
  std::map<std::string, Tensor> buffers;
  for (const auto &[name, t] : inputs)
    if (!e.findInput(name))
      throw std::runtime_error("entry '" + e.name + "' has no input '" + name +
                               "'");
  for (const TensorSpec &spec : e.inputs) {
    auto it = inputs.find(spec.name);
    if (it == inputs.end())
      throw std::runtime_error("entry '" + e.name + "': missing input '" +
                               spec.name + "'");
    checkInput(e, spec, it->second);
    buffers[spec.name] = it->second;
  }

  auto allocate = [&](const TensorSpec &spec) {
    std::vector<int64_t> shape;
    for (const DimSpec &d : spec.shape) {
      if (d.size >= 0) {
        shape.push_back(d.size);
        continue;
      }
      auto it = buffers.find(d.like);
      if (it == buffers.end() || d.dim < 0 || d.dim >= it->second.rank())
        throw std::runtime_error("manifest: '" + spec.name +
                                 "' has a dimension taken from unknown '" +
                                 d.like + "'");
      int64_t n = it->second.shape()[d.dim];
      shape.push_back((n + d.div - 1) / d.div + d.add);
    }
    // Poisoned, so that a kernel that fails to write an element shows.
    if (spec.dtype == "int32") {
      Tensor t(shape, DType::Int32);
      std::fill(t.i32(), t.i32() + t.numel(),
                std::numeric_limits<int32_t>::min());
      buffers[spec.name] = t;
      return;
    }
    Tensor t(shape);
    std::fill(t.f32(), t.f32() + t.numel(),
              std::numeric_limits<float>::quiet_NaN());
    buffers[spec.name] = t;
  };
  for (const TensorSpec &spec : e.outputs)
    allocate(spec);
  for (const TensorSpec &spec : e.temporaries)
    allocate(spec);

  // Pick a variant per kernel and prepare its argument vector.
  struct Job {
    const KernelInfo *kernel;
    const KernelVariant *variant;
    std::vector<void *> args;
    double seconds = 0;
  };
  std::vector<Job> jobs;
  for (const KernelInfo &k : e.kernels) {
    Job job{&k, nullptr, {}};
    auto &in0 = buffers.at(k.inputs.at(0));
    int64_t rows = in0.rank() > 2 ? in0.shape()[2] : 1;
    for (const KernelVariant &v : k.variants)
      if (v.maxRows < 0 || rows <= v.maxRows) {
        job.variant = &v;
        break;
      }
    if (!job.variant)
      throw std::runtime_error("kernel '" + k.name + "': no variant for " +
                               std::to_string(rows) + " rows");
    for (const std::string &b : k.inputs)
      job.args.push_back(buffers.at(b).halideBuffer());
    for (const std::string &b : k.outputs)
      job.args.push_back(buffers.at(b).halideBuffer());
    jobs.push_back(std::move(job));
  }

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
            // GPU modules: an input with no device copy yet (an entry input
            // on its first use, or what a host kernel such as a selection
            // wrote) is valid on the host; Halide copies it over. Later runs
            // on the same Tensor reuse the device copy.
            for (size_t a = 0; a < job->kernel->inputs.size(); ++a) {
              auto *buf = static_cast<halide_buffer_t *>(job->args[a]);
              if (!buf->device)
                buf->flags |= halide_buffer_flag_host_dirty;
            }
            auto t0 = std::chrono::steady_clock::now();
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
      profile->push_back(
          {j.kernel->name, j.variant->symbol, j.kernel->kind, j.seconds});

  // GPU modules leave results on the device; bring the outputs back.
  for (const TensorSpec &spec : e.outputs) {
    halide_buffer_t *buf = buffers.at(spec.name).halideBuffer();
    if (buf->device && (buf->flags & halide_buffer_flag_device_dirty)) {
      if (module_->copyToHost(buf) != 0)
        throw std::runtime_error("entry '" + e.name + "': copying output '" +
                                 spec.name + "' from the device failed: " +
                                 Module::takeHalideError());
    }
  }
  if (temporaries)
    for (const TensorSpec &spec : e.temporaries)
      (*temporaries)[spec.name] = buffers.at(spec.name);
  std::map<std::string, Tensor> outputs;
  for (const TensorSpec &spec : e.outputs)
    outputs[spec.name] = buffers.at(spec.name);
  return outputs;
}

} // namespace deltaflow::rt
