//===- Session.cpp - model state for prefill and decode -------------------===//

#include "deltaflow/Runtime/Session.h"

#include <sys/mman.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace deltaflow::rt {

namespace {

const char *kEntries[] = {"prefill", "decode"};

} // namespace

std::shared_ptr<Model> Model::load(const std::string &soPath,
                                   const std::string &weightsPath, int threads,
                                   int device) {
  auto m = std::make_shared<Model>();
  m->module_ = Module::load(soPath);
  for (const char *name : kEntries) {
    bool found = false;
    for (const EntryInfo &e : m->module_->entries())
      found |= e.name == name;
    if (!found)
      throw std::runtime_error(soPath + ": no '" + name +
                               "' entry; a model module needs prefill and "
                               "decode functions (see examples/llama)");
  }
  m->executor_ = std::make_unique<Executor>(m->module_, threads, device);
  m->file_ = Checkpoint::open(weightsPath);
  for (const char *name : kEntries) {
    const EntryInfo &e = m->module_->entry(name);
    std::vector<TensorSpec> expected;
    for (const TensorSpec &t : e.inputs)
      if (t.role == Role::Weight)
        expected.push_back(t);
    m->file_->validate(expected, soPath + " entry '" + name + "'");
    for (const TensorSpec &t : expected)
      if (!m->weights_.count(t.name))
        m->weights_[t.name] = m->file_->tensor(t.name);
    if (e.outputs.empty() || e.outputs[0].shape.empty() ||
        e.outputs[0].shape.back().size < 0)
      throw std::runtime_error(soPath + ": entry '" + name +
                               "' must return static logits [.., vocab]");
    m->vocab_ = e.outputs[0].shape.back().size;
  }
  return m;
}

size_t Model::weightBytes() const {
  size_t n = 0;
  for (const auto &[name, t] : weights_)
    n += t.bytes();
  return n;
}

/// One KV-cache input: [B, H, capacity, D] float32 or float16 (the
/// module's), reserved with mmap and committed by the kernel page by page
/// as positions are written; for a CUDA module (unless kvOffload is off),
/// allocated on the device as well, which then holds the data: the host
/// reservation is written only where rows pass through the host (a
/// narrowing to f16) or a host reader copies the cache back.
struct Session::Cache {
  Tensor full;
  size_t bytes = 0;
};

Session::Session(std::shared_ptr<Model> model, SessionOptions options)
    : model_(std::move(model)), opts_(options) {
  if (opts_.capacity <= 0)
    throw std::runtime_error("session: KV-cache capacity must be > 0, got " +
                             std::to_string(opts_.capacity));
  for (const char *name : kEntries)
    for (const TensorSpec &t : model_->module().entry(name).inputs) {
      if (t.role != Role::KvCache || caches_.count(t.name))
        continue;
      if (t.shape.size() != 4 || t.shape[0].size < 0 || t.shape[1].size < 0 ||
          t.shape[3].size < 0 || t.shape[2].size >= 0 ||
          (t.dtype != DType::Float32 && t.dtype != DType::Float16 &&
           t.dtype != DType::BFloat16))
        throw std::runtime_error("entry '" + std::string(name) + "' KV cache '" +
                                 t.name + "' must be float32, float16 or bfloat16 "
                                 "[B, H, ?, D], is " + dtypeName(t.dtype) + " " +
                                 t.shapeString());
      // The cache holds K/V in the module's dtype: f16 or bf16 KV storage
      // halves the bytes every attention step reads (bf16: the K/V of
      // tensor-core attention, narrowed in the graph).
      DType dtype = t.dtype;
      std::vector<int64_t> shape = {t.shape[0].size, t.shape[1].size,
                                    opts_.capacity, t.shape[3].size};
      size_t bytes = size_t(shape[0] * shape[1] * shape[2] * shape[3]) *
                     dtypeSize(dtype);
      void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED)
        throw std::runtime_error("session: cannot reserve " +
                                 std::to_string(bytes >> 20) +
                                 " MiB for KV cache '" + t.name + "'");
      std::shared_ptr<void> owner(p, [bytes](void *q) { munmap(q, bytes); });
      auto c = std::make_unique<Cache>();
      c->full = Tensor::view(shape, dtype, p, owner);
      c->bytes = bytes;
      // A CUDA module keeps the cache on the device: each step's view
      // aliases this allocation, and new rows are written there (the
      // executor's cache write), so nothing is copied per step.
      if (opts_.kvOffload)
        model_->module().deviceAllocate(c->full.halideBuffer());
      caches_[t.name] = std::move(c);
    }
}

Session::~Session() = default;

size_t Session::cacheBytes() const {
  size_t n = 0;
  for (const auto &[name, c] : caches_)
    n += c->bytes;
  return n;
}

SelectionSize selectionSize(const Tensor &indices) {
  SelectionSize n;
  if (indices.dtype() != DType::Int32 || !indices.dense() || !indices.hostCurrent() ||
      indices.shape().empty() || indices.shape().back() <= 0)
    return n;
  for (const int32_t *p = indices.i32(), *e = p + indices.numel(); p != e; ++p)
    n.selected += *p >= 0;
  n.rows = indices.numel() / indices.shape().back();
  return n;
}

Tensor Session::prefill(const std::vector<int32_t> &tokens, int64_t start,
                        StepStats *stats, int64_t promptRowsAfter) {
  if (start != pos_)
    throw std::runtime_error(
        "prefill at position " + std::to_string(start) + ", but the session is at " +
        std::to_string(pos_) +
        (start < pos_ ? " (positions cannot go backwards)"
                      : " (positions cannot skip ahead)"));
  if (tokens.empty())
    throw std::runtime_error("prefill with no tokens");
  if (promptRowsAfter < 0)
    throw std::runtime_error("prefill: promptRowsAfter must be >= 0, got " +
                             std::to_string(promptRowsAfter));
  return step("prefill", tokens, stats, promptRowsAfter);
}

Tensor Session::decode(int32_t token, StepStats *stats) {
  if (pos_ == 0)
    throw std::runtime_error("decode before prefill: the session has no "
                             "context yet");
  return step("decode", {token}, stats);
}

Tensor Session::step(const std::string &entryName,
                     const std::vector<int32_t> &tokens, StepStats *stats,
                     int64_t promptRowsAfter) {
  const int64_t n = int64_t(tokens.size());
  if (pos_ + n > opts_.capacity)
    throw std::runtime_error(
        entryName + " of " + std::to_string(n) + " tokens at position " +
        std::to_string(pos_) + " exceeds the KV-cache capacity of " +
        std::to_string(opts_.capacity) + " positions");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= model_->vocab())
      throw std::runtime_error("token " + std::to_string(tokens[i]) +
                               " at index " + std::to_string(i) +
                               " is outside the vocabulary [0, " +
                               std::to_string(model_->vocab()) + ")");
  const EntryInfo &e = model_->module().entry(entryName);
  std::map<std::string, Tensor> inputs;
  for (const TensorSpec &t : e.inputs) {
    std::string where = "entry '" + entryName + "' input '" + t.name + "'";
    if (t.role == Role::Weight) {
      inputs[t.name] = model_->weights().at(t.name);
    } else if (t.role == Role::KvCache) {
      inputs[t.name] = caches_.at(t.name)->full.narrow(2, pos_ + n);
    } else if (t.role == Role::Tokens || t.role == Role::Positions) {
      std::vector<int64_t> shape;
      int64_t staticCount = 1;
      for (const DimSpec &d : t.shape)
        staticCount *= d.size >= 0 ? d.size : 1;
      for (const DimSpec &d : t.shape)
        shape.push_back(d.size >= 0 ? d.size : n / staticCount);
      Tensor x(shape, DType::Int32);
      if (x.numel() != n)
        throw std::runtime_error(where + " has shape " + t.shapeString() +
                                 ", which cannot hold " + std::to_string(n) +
                                 " tokens");
      for (int64_t i = 0; i < n; ++i)
        x.i32()[i] = t.role == Role::Tokens ? tokens[size_t(i)] : int32_t(pos_ + i);
      inputs[t.name] = x;
    } else if (t.role == Role::LastRow) {
      std::vector<int64_t> shape;
      for (const DimSpec &d : t.shape)
        shape.push_back(d.size >= 0 ? d.size : 1);
      Tensor x(shape, DType::Int32);
      std::fill(x.i32(), x.i32() + x.numel(), int32_t(n - 1));
      inputs[t.name] = x;
    } else {
      throw std::runtime_error(where + " has role '" + manifest::toString(t.roleOrInput()) +
                               "', which a session cannot feed");
    }
  }

  RunOptions ro;
  ro.promptRowsAfter = promptRowsAfter;
  if (stats) {
    ro.profile = &stats->profile;
    ro.syncEachKernel = stats->timeEachKernel;
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto &[name, t] : inputs)
      shapes[name] = t.shape();
    stats->valueBytes = 0;
    for (const TensorSpec &v : e.valueBuffers) {
      size_t el = dtypeSize(v.dtype);
      for (int64_t d : manifest::resolveShape(v, shapes))
        el *= size_t(d);
      stats->valueBytes += el;
    }
  }
  int hits = 0, misses = 0;
  int64_t selected = 0, rows = 0;
  std::mutex countMutex;
  // Every selection's size, whether a select kernel made it or the cache
  // gave it.
  auto countSelection = [&](const KernelInfo &k, const std::vector<Tensor> &bufs) {
    SelectionSize n = selectionSize(bufs.at(size_t(k.argIndex(Arg::Indices))));
    std::lock_guard<std::mutex> c(countMutex);
    selected += n.selected;
    rows += n.rows;
  };
  const bool cacheSelections = entryName == "decode" && opts_.selectionCache;
  // After a select kernel ran: its size, and in decode its indices for the
  // selection cache.
  ro.after = [&](const KernelInfo &k, std::vector<Tensor> &bufs) {
    if (k.kind != KernelKind::Select)
      return;
    countSelection(k, bufs);
    if (!cacheSelections)
      return;
    const Tensor &q = bufs.at(size_t(k.argIndex(Arg::Query))),
                 &out = bufs.at(size_t(k.argIndex(Arg::Indices)));
    // Only selections whose bytes are on the host (not a GPU kernel's
    // output still on the device) are cached.
    if (!q.dense() || !q.hostCurrent() || !out.hostCurrent())
      return;
    Selection s;
    s.q.assign(q.f32(), q.f32() + q.numel());
    s.indices = Tensor(out.shape(), out.dtype());
    std::memcpy(s.indices.raw(), out.raw(), out.bytes());
    std::lock_guard<std::mutex> lock(selMutex_);
    selections_[k.name] = std::move(s);
  };
  if (cacheSelections) {
    // The selection cache: per select kernel (one per layer), reuse the
    // previous indices while the query stays close to the cached one.
    ro.before = [&](const KernelInfo &k, std::vector<Tensor> &bufs) {
      if (k.kind != KernelKind::Select)
        return false;
      const Tensor &q = bufs.at(size_t(k.argIndex(Arg::Query)));
      Tensor &out = bufs.at(size_t(k.argIndex(Arg::Indices)));
      std::unique_lock<std::mutex> lock(selMutex_);
      auto it = selections_.find(k.name);
      bool hit = false;
      // A query still on the device (a GPU kernel's output) is not compared:
      // its host bytes are stale.
      if (it != selections_.end() && q.dense() && q.hostCurrent() &&
          it->second.q.size() == size_t(q.numel()) &&
          it->second.indices.shape() == out.shape()) {
        double dot = 0, a = 0, b = 0;
        const float *x = q.f32(), *y = it->second.q.data();
        for (int64_t i = 0; i < q.numel(); ++i) {
          dot += double(x[i]) * y[i];
          a += double(x[i]) * x[i];
          b += double(y[i]) * y[i];
        }
        hit = a > 0 && b > 0 && dot / std::sqrt(a * b) >= opts_.theta;
      }
      {
        std::lock_guard<std::mutex> c(countMutex);
        (hit ? hits : misses)++;
      }
      if (hit)
        std::memcpy(out.raw(), it->second.indices.raw(), out.bytes());
      lock.unlock();
      if (hit)
        countSelection(k, bufs);
      return hit;
    };
  }
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, Tensor> outs = model_->executor().run(entryName, inputs, ro);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  pos_ += n;
  hits_ += hits;
  misses_ += misses;
  fallbacks_ += ro.denseFallbacks;
  selectedKeys_ += selected;
  selectionRows_ += rows;
  if (stats) {
    stats->selectedKeys = selected;
    stats->selectionRows = rows;
    stats->seconds = seconds;
    stats->selectHits = hits;
    stats->selectMisses = misses;
    stats->denseFallbacks = ro.denseFallbacks;
    stats->arenaBytes = ro.arenaBytes;
    stats->separateBytes = ro.separateBytes;
  }
  return outs.at(e.outputs.at(0).name);
}

} // namespace deltaflow::rt
