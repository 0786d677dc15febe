//===- Shard.cpp - deltaflow-run shard: one attention over key shards -----===//
//
// Context parallelism of one attention layer (DESIGN "Scale-out", issue #17
// stage 1): the keys are split by sequence across the ranks of an MPI run,
// each rank runs the compiled attention on its shard, one allgather per call
// exchanges the (out, lse) partials, and every rank merges them by LSE
// (runtime/include/deltaflow/Runtime/ContextParallel.h).
//
//===----------------------------------------------------------------------===//

#include "Shard.h"
#include "Options.h"
#include "deltaflow/Runtime/Communicator.h"
#include "deltaflow/Runtime/ContextParallel.h"
#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Npy.h"

#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <unistd.h>

namespace deltaflow::rt {

namespace {

const char *kShardUsage = R"(usage: mpirun -np N deltaflow-run shard MODULE.so --input q=Q.npy --input k=K.npy
                  --input v=V.npy [--output out=OUT.npy] [--output lse=LSE.npy] [options]

Context parallelism of one attention (DESIGN "Scale-out"): the keys and
values are split by sequence across the N ranks of an MPI run (contiguous
shards whose sizes differ by at most one; a rank may hold none). Each rank
runs the module on its shard. One allgather of the (out, lse) partials per
call follows, and every rank merges them by log-sum-exp:
  L = m + log sum_i exp(L_i - m),  O = sum_i exp(L_i - L) O_i.
Rank 0 writes the outputs, equal to an unsharded run's to float32 rounding.

The module's entry must be one dense attn.attention that returns its LSE,
e.g. examples/attention_lse.mlir. Causal attention shards in decode (one
query row, at the end of the keys); non-causal attention with any number of
rows. At start every rank checks that all ranks loaded the same module (a
hash of the .so and its manifest) and the same key count.

Rank 0 prints one line per rank: its keys, its K/V shard's memory, its
kernel time, its collective time and the collective's share of the call.

options:
  --input NAME=FILE.npy   q, k and v, as for deltaflow-run (every rank reads
                          them and keeps its shard of k and v)
  --output NAME=FILE.npy  out and/or lse (written by rank 0)
  --repeat N              run N times, report the fastest (default 1)
  --threads N             worker threads per rank (default: all cores)
  --timeout S             seconds a collective may take before the rank
                          stops with an error naming it (default 60, or
                          DELTAFLOW_COLLECTIVE_TIMEOUT)
  -h, --help              this text
)";

[[noreturn]] void shardUsageError(const std::string &msg) {
  std::fprintf(stderr, "deltaflow-run shard: error: %s\n", msg.c_str());
  std::fprintf(stderr, "run 'deltaflow-run shard --help' for usage\n");
  std::exit(2);
}

/// FNV-1a 64 of a file's bytes, continuing from `h`.
uint64_t hashFile(const std::string &path, uint64_t h) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(path + ": cannot read");
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    for (std::streamsize i = 0; i < in.gcount(); ++i)
      h = (h ^ uint8_t(buf[i])) * 0x100000001b3ull;
  }
  return h;
}

/// Rows [begin, end) of dim 2 of a [B, H, N, D] tensor, copied.
Tensor keyRows(const Tensor &t, int64_t begin, int64_t end) {
  const std::vector<int64_t> &s = t.shape();
  Tensor r({s[0], s[1], end - begin, s[3]}, t.dtype());
  size_t row = size_t(s[3]) * dtypeSize(t.dtype());
  const auto *src = static_cast<const uint8_t *>(t.raw());
  auto *dst = static_cast<uint8_t *>(r.raw());
  for (int64_t bh = 0; bh < s[0] * s[1]; ++bh)
    if (end > begin)
      std::memcpy(dst + size_t(bh * (end - begin)) * row,
                  src + size_t(bh * s[2] + begin) * row, size_t(end - begin) * row);
  return r;
}

/// What every rank tells the others before the attention runs.
struct Status {
  int32_t ok = 0;
  int32_t pad = 0;
  uint64_t hash = 0;
  int64_t nk = 0, nq = 0;
};

/// What every rank reports after it.
struct Report {
  int64_t begin = 0, end = 0, shardBytes = 0;
  double kernelMs = 0, commMs = 0, callMs = 0;
};

} // namespace

int runShard(const std::vector<std::string> &args) {
  std::string modulePath;
  std::vector<std::pair<std::string, std::string>> inputFiles, outputFiles;
  int threads = 0, repeat = 1;
  double timeout = 60;
  if (const char *env = std::getenv("DELTAFLOW_COLLECTIVE_TIMEOUT")) {
    auto n = parseInteger(env, 1, 86400);
    if (!n)
      shardUsageError(std::string("DELTAFLOW_COLLECTIVE_TIMEOUT must be whole "
                                  "seconds in [1, 86400], got '") + env + "'");
    timeout = double(*n);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    auto take = [&](const std::string &name) {
      return takeOption(args, i, name, value, shardUsageError);
    };
    auto positive = [&](const std::string &opt, int64_t hi) {
      auto n = parseInteger(value, 1, hi);
      if (!n)
        shardUsageError(opt + " expects an integer in [1, " + std::to_string(hi) +
                        "], got '" + value + "'");
      return int(*n);
    };
    auto binding = [&](const std::string &opt) {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
        shardUsageError(opt + " expects NAME=FILE.npy, got '" + value + "'");
      return std::make_pair(value.substr(0, eq), value.substr(eq + 1));
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kShardUsage, stdout);
      return 0;
    } else if (take("--input")) {
      inputFiles.push_back(binding("--input"));
    } else if (take("--output")) {
      outputFiles.push_back(binding("--output"));
    } else if (take("--repeat")) {
      repeat = positive("--repeat", 1 << 20);
    } else if (take("--threads")) {
      threads = positive("--threads", 1 << 20);
    } else if (take("--timeout")) {
      timeout = positive("--timeout", 86400);
    } else if (!a.empty() && a[0] == '-') {
      shardUsageError("unknown option '" + a + "'");
    } else if (modulePath.empty()) {
      modulePath = a;
    } else {
      shardUsageError("unexpected argument '" + a + "'");
    }
  }
  if (modulePath.empty())
    shardUsageError("no module given");

  std::unique_ptr<Communicator> comm;
  try {
    comm = mpiCommunicator(timeout);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "deltaflow-run shard: error: %s\n", e.what());
    return 1;
  }
  const int rank = comm->rank(), ranks = comm->size();
  auto fail = [&](const std::string &msg) {
    std::fprintf(stderr, "deltaflow-run shard: error: rank %d of %d: %s\n", rank,
                 ranks, msg.c_str());
  };
  std::unique_ptr<tbb::global_control> threadLimit;
  if (threads > 0)
    threadLimit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, threads);

  // Everything local first; then every rank learns whether all are ready.
  Status mine;
  std::shared_ptr<Module> module;
  const EntryInfo *entry = nullptr;
  const manifest::KernelSpec *attn = nullptr;
  std::map<std::string, Tensor> inputs;
  Tensor q, kShard, vShard;
  std::pair<int64_t, int64_t> keys{0, 0};
  try {
    module = Module::load(modulePath);
    if (module->entries().size() != 1)
      throw std::runtime_error(modulePath + ": has " +
                               std::to_string(module->entries().size()) +
                               " entries; shard takes a module of one attention");
    entry = &module->entry(module->entries()[0].name);
    for (const manifest::KernelSpec &k : entry->kernels)
      if (k.kind == manifest::KernelKind::Attention && !attn)
        attn = &k;
    if (!attn || entry->kernels.size() != 1 || attn->inputs.size() != 3 ||
        !attn->attention.withLse || attn->outputs.size() != 2)
      throw std::runtime_error(
          modulePath + ": its entry is not one dense attn.attention with its LSE "
                       "output (the merge needs each shard's log-sum-exp; "
                       "examples/attention_lse.mlir is one)");
    for (const auto &[name, file] : outputFiles) {
      if (!entry->findOutput(name))
        throw std::runtime_error("entry '" + entry->name + "' has no output '" + name + "'");
      std::string dir = std::filesystem::path(file).parent_path().string();
      if (rank == 0 && access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
        throw std::runtime_error(file + ": cannot write: " + std::strerror(errno));
    }
    for (const auto &[name, file] : inputFiles) {
      const TensorSpec *spec = entry->findInput(name);
      if (!spec)
        throw std::runtime_error("entry '" + entry->name + "' has no input '" + name + "'");
      if (inputs.count(name))
        throw std::runtime_error("input '" + name + "' bound twice");
      inputs[name] = convertInput(readNpy(file), spec->dtype);
    }
    for (const std::string &name : attn->inputs)
      if (!inputs.count(name))
        throw std::runtime_error("input '" + name + "' is not bound (--input " + name +
                                 "=FILE.npy)");
    q = inputs.at(attn->inputs[0]);
    const Tensor &k = inputs.at(attn->inputs[1]), &v = inputs.at(attn->inputs[2]);
    for (const Tensor *t : std::initializer_list<const Tensor *>{&q, &k, &v})
      if (t->rank() != 4)
        throw std::runtime_error("q, k and v must be [B, H, N, D]; got " + t->shapeString());
    if (k.shape()[2] != v.shape()[2])
      throw std::runtime_error("k and v hold " + std::to_string(k.shape()[2]) + " and " +
                               std::to_string(v.shape()[2]) + " keys");
    if (k.shape()[2] < 1)
      throw std::runtime_error("no keys (k holds 0 rows)");
    if (attn->attention.causal && q.shape()[2] != 1)
      throw std::runtime_error(
          "causal attention shards in decode only (one query row at the end of "
          "the keys), got " + std::to_string(q.shape()[2]) +
          " rows; a causal prefill needs ring attention, which is not built yet");
    mine.nk = k.shape()[2];
    mine.nq = q.shape()[2];
    keys = keyShard(mine.nk, rank, ranks);
    kShard = keyRows(k, keys.first, keys.second);
    vShard = keyRows(v, keys.first, keys.second);
    inputs.clear(); // the full k and v go; q stays in `q`
    mine.hash = hashFile(module->path(), hashFile(
        std::filesystem::path(modulePath).replace_extension(".manifest.json").string(),
        0xcbf29ce484222325ull));
    mine.ok = 1;
  } catch (const std::exception &e) {
    fail(e.what());
  }
  std::vector<Status> all(static_cast<size_t>(ranks));
  try {
    comm->allGather(&mine, sizeof mine, all.data());
  } catch (const std::exception &e) {
    fail(e.what());
    comm->abort(1);
  }
  for (int r = 0; r < ranks; ++r)
    if (!all[size_t(r)].ok)
      return 1; // that rank said why
  for (int r = 1; r < ranks; ++r) {
    if (all[size_t(r)].hash != all[0].hash) {
      if (rank == 0)
        fail("rank " + std::to_string(r) + " loaded another module or manifest than rank 0 "
             "(their hashes differ): every rank must run the same " + modulePath);
      return 1;
    }
    if (all[size_t(r)].nk != all[0].nk || all[size_t(r)].nq != all[0].nq) {
      if (rank == 0)
        fail("rank " + std::to_string(r) + " read " + std::to_string(all[size_t(r)].nq) +
             " query rows and " + std::to_string(all[size_t(r)].nk) +
             " keys, rank 0 " + std::to_string(all[0].nq) + " and " +
             std::to_string(all[0].nk) + ": every rank must read the same inputs");
      return 1;
    }
  }

  // The call: this rank's partial, one allgather, the merge.
  const std::vector<int64_t> &qs = q.shape();
  const int64_t dv = attn->attention.dv, rows = qs[0] * qs[1] * qs[2];
  Tensor out({qs[0], qs[1], qs[2], dv}), lse({qs[0], qs[1], qs[2]});
  Report rep;
  rep.begin = keys.first;
  rep.end = keys.second;
  rep.shardBytes = int64_t(kShard.bytes() + vShard.bytes());
  rep.kernelMs = rep.callMs = rep.commMs = std::numeric_limits<double>::infinity();
  try {
    Executor exec(module, threads);
    std::vector<float> send(size_t(rows * (dv + 1))), recv(send.size() * size_t(ranks));
    for (int it = 0; it < repeat; ++it) {
      auto t0 = std::chrono::steady_clock::now();
      if (keys.second > keys.first) {
        std::map<std::string, Tensor> in = {{attn->inputs[0], q},
                                            {attn->inputs[1], kShard},
                                            {attn->inputs[2], vShard}};
        std::map<std::string, Tensor> res = exec.run(entry->name, in);
        Tensor o = res.at(attn->outputs[0]).toFloat32(), l = res.at(attn->outputs[1]).toFloat32();
        std::memcpy(send.data(), o.f32(), size_t(rows * dv) * 4);
        std::memcpy(send.data() + rows * dv, l.f32(), size_t(rows) * 4);
      } else {
        std::fill(send.begin(), send.begin() + rows * dv, 0.0f);
        std::fill(send.begin() + rows * dv, send.end(), -INFINITY);
      }
      auto t1 = std::chrono::steady_clock::now();
      double comm0 = comm->commSeconds;
      comm->allGather(send.data(), send.size() * 4, recv.data());
      double commMs = (comm->commSeconds - comm0) * 1e3;
      std::vector<AttentionPartial> parts;
      for (int r = 0; r < ranks; ++r) {
        const float *base = recv.data() + size_t(r) * send.size();
        parts.push_back({base, base + rows * dv});
      }
      mergeAttentionPartials(parts, rows, dv, out.f32(), lse.f32());
      auto t2 = std::chrono::steady_clock::now();
      rep.kernelMs = std::min(rep.kernelMs,
                              std::chrono::duration<double, std::milli>(t1 - t0).count());
      rep.commMs = std::min(rep.commMs, commMs);
      rep.callMs = std::min(rep.callMs,
                            std::chrono::duration<double, std::milli>(t2 - t0).count());
    }
    std::vector<Report> reps(static_cast<size_t>(ranks));
    comm->allGather(&rep, sizeof rep, reps.data());
    if (rank == 0) {
      std::printf("shard: %d rank(s) over %s, %lld keys, %lld query row(s); fastest of %d call(s)\n",
                  ranks, comm->describe().c_str(), (long long)all[0].nk,
                  (long long)all[0].nq, repeat);
      for (int r = 0; r < ranks; ++r) {
        const Report &x = reps[size_t(r)];
        std::printf("  rank %d: keys [%lld, %lld) (%lld), K/V shard %.2f MiB, kernel %.3f ms, "
                    "allgather %.3f ms, call %.3f ms (communication %.0f%%)\n",
                    r, (long long)x.begin, (long long)x.end, (long long)(x.end - x.begin),
                    double(x.shardBytes) / (1 << 20), x.kernelMs, x.commMs, x.callMs,
                    x.callMs > 0 ? 100 * x.commMs / x.callMs : 0.0);
      }
      std::vector<std::pair<std::string, const Tensor *>> files;
      for (const auto &[name, file] : outputFiles)
        files.emplace_back(file, name == attn->outputs[0] ? &out : &lse);
      writeNpyAll(files, DType::Float32);
    }
  } catch (const std::exception &e) {
    fail(e.what());
    comm->abort(1);
  }
  return 0;
}

} // namespace deltaflow::rt
