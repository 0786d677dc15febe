//===- Shard.cpp - deltaflow-run shard: one attention over key shards -----===//
//
// Context parallelism of one attention layer (DESIGN "Scale-out", issue #17
// stage 1): the keys are split by sequence across the ranks of an MPI run,
// each rank runs the compiled attention on its shard, one allgather per call
// exchanges the (out, lse) partials, and every rank merges them by LSE
// (runtime/include/deltaflow/Runtime/ContextParallel.h); a causal prefill
// runs as a ring over zigzag chunks (ringPrefill); a sparse decode makes
// TokenSelect's selection over every rank's keys (sparseDecode).
//
//===----------------------------------------------------------------------===//

#include "Shard.h"
#include "Options.h"
#include "deltaflow/Runtime/Communicator.h"
#include "deltaflow/Runtime/ContextParallel.h"
#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Npy.h"
#include "deltaflow/Common/SparseGeometry.h"

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
#include <array>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <sched.h>
#include <thread>
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
rows. A causal prefill (as many query rows as keys) runs as a ring over
zigzag chunks: give a module with a causal and a full attention, e.g.
examples/attention_ring.mlir; rank r holds chunks r and 2N-1-r of the 2N,
the K/V chunks travel round the ring, and each query chunk's partials merge
by LSE.

Sparse decode: give a module with a sparse decode entry and a full
attention, e.g. examples/attention_ring.mlir compiled with
  --sparsity="policy=token-select budget=2048 sinks=128 window=512 entries=causal".
TokenSelect's selection is made over every rank's keys at once: each rank
scores its candidates, one allgather combines the per-head softmax
statistics, a second gathers each rank's best `budget` votes, and every
rank takes the global top-k of their union, the same for any rank count
(the compiled kernel's up to float32 near-ties). Each
rank then attends, by the full entry, to the keys of the pattern (sinks,
selection, window) that it holds, and the partials merge by LSE. Window +
sinks (policy=window) needs no selection. Other policies and Delta do not
shard yet.

At start every rank checks that all ranks loaded the same module (a hash
of the .so and its manifest), read inputs of the same shapes and types, and
were given the same --repeat.

Rank 0 prints one line per rank: its keys (sparse: how many it attends to,
and the selection's time, its two allgathers included), its K/V shard's
memory, its kernel time (sparse: the gather of those keys and the full
entry over them), its collective time (every allgather of the call) and
the collectives' share of the call.

options:
  --input NAME=FILE.npy   q, k and v, as for deltaflow-run (every rank reads
                          them and keeps its shard of k and v)
  --output NAME=FILE.npy  out and/or lse (written by rank 0)
  --selection FILE.npy    token-select: the global selection, int32
                          [B, 1, 1, slots] as the select kernel writes it
                          (ascending, -1 in unused slots; all -1 when the
                          context fits the pattern and every key is read)
  --repeat N              run N times, report the fastest (default 1)
  --threads N             worker threads per rank (default: all cores). Open
                          MPI binds each rank to one core by default; for
                          more threads per rank give mpirun --bind-to none
                          (rank 0 prints a note when its affinity is smaller)
  --timeout S             seconds a collective may take before the rank
                          stops with an error naming it (default 60, or
                          DELTAFLOW_COLLECTIVE_TIMEOUT)
  -h, --help              this text
)";

[[noreturn]] void shardUsageError(const std::string &msg) {
  exitWithUsageError("deltaflow-run shard", msg);
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

/// Copies `n` rows of `rowBytes` bytes of each of `bh` leading blocks (the
/// [B, H] of a [B, H, N, ...] tensor): block i's rows from row `srcAt` of
/// `src` (blocks of `srcRows` rows) to row `dstAt` of `dst` (blocks of
/// `dstRows` rows).
void copyRowBlocks(const void *src, int64_t srcRows, int64_t srcAt, void *dst,
                   int64_t dstRows, int64_t dstAt, int64_t bh, int64_t n, size_t rowBytes) {
  for (int64_t i = 0; i < bh && n > 0; ++i)
    std::memcpy(static_cast<uint8_t *>(dst) + size_t(i * dstRows + dstAt) * rowBytes,
                static_cast<const uint8_t *>(src) + size_t(i * srcRows + srcAt) * rowBytes,
                size_t(n) * rowBytes);
}

/// Rows `rows` (ascending) of dim 2 of batch `b` of a [B, H, N, D] tensor,
/// copied as [1, H, rows.size(), D], a run of consecutive rows at a time.
Tensor gatherRows(const Tensor &t, int64_t b, const std::vector<int64_t> &rows) {
  const std::vector<int64_t> &s = t.shape();
  const int64_t m = int64_t(rows.size());
  Tensor r({1, s[1], m, s[3]}, t.dtype());
  const size_t rowBytes = size_t(s[3]) * dtypeSize(t.dtype());
  const uint8_t *batch = static_cast<const uint8_t *>(t.raw()) + size_t(b * s[1] * s[2]) * rowBytes;
  for (int64_t i = 0, j; i < m; i = j) {
    for (j = i + 1; j < m && rows[size_t(j)] == rows[size_t(j - 1)] + 1;)
      ++j;
    copyRowBlocks(batch, s[2], rows[size_t(i)], r.raw(), m, i, s[1], j - i, rowBytes);
  }
  return r;
}

/// Rows [begin, end) of dim 2 of a [B, H, N, D] tensor, copied.
Tensor keyRows(const Tensor &t, int64_t begin, int64_t end) {
  const std::vector<int64_t> &s = t.shape();
  Tensor r({s[0], s[1], end - begin, s[3]}, t.dtype());
  copyRowBlocks(t.raw(), s[2], begin, r.raw(), end - begin, 0, s[0] * s[1], end - begin,
                size_t(s[3]) * dtypeSize(t.dtype()));
  return r;
}

/// What every rank tells the others before the attention runs.
struct Status {
  int32_t ok = 0;
  int32_t repeat = 0; ///< calls: every rank must make as many collectives
  uint64_t hash = 0;
  /// q, k and v: shape and element type; the exchanged sizes follow.
  int64_t shapes[3][4] = {};
  int32_t dtypes[3] = {}, pad = 0;
  int64_t nq() const { return shapes[0][2]; }
  int64_t nk() const { return shapes[1][2]; }
};

/// What every rank reports after it.
struct Report {
  int64_t begin = 0, end = 0, begin2 = 0, end2 = 0, shardBytes = 0; ///< keys (ring: 2 chunks)
  int64_t attended = 0; ///< sparse: keys of the pattern held here (summed over the batch)
  double selectMs = 0, kernelMs = 0, commMs = 0, callMs = 0;
};


/// Whether the full (non-causal) attention `full` can stand in for `a` over
/// some of its keys: the same heads, dims, scale and types, and `a` without
/// a static offset (each shard would count it from its own first key).
bool fullRunsLike(const manifest::AttentionParams &a, const manifest::AttentionParams &full) {
  return !a.offset && a.hq == full.hq && a.hkv == full.hkv && a.d == full.d &&
         a.dv == full.dv && a.scale == full.scale && a.dtype == full.dtype &&
         a.kvDtype == full.kvDtype;
}

/// An entry that is one dense attention with its LSE output.
struct AttentionEntry {
  const EntryInfo *entry = nullptr;
  const manifest::KernelSpec *attn = nullptr;
};
std::optional<AttentionEntry> attentionEntry(const EntryInfo &e) {
  if (e.kernels.size() != 1)
    return std::nullopt;
  const manifest::KernelSpec &k = e.kernels[0];
  if (k.kind != manifest::KernelKind::Attention || k.inputs.size() != 3 ||
      k.outputs.size() != 2 || !k.attention.withLse)
    return std::nullopt;
  return AttentionEntry{&e, &k};
}

struct CallTimes {
  double selectMs = 0; ///< sparse: the global selection, its allgathers included
  double kernelMs = 0, commMs = 0, callMs = 0;
};

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
      .count();
}

/// Attention of `q` over `k`, `v` by entry `a`: (out, lse) as float32.
std::pair<Tensor, Tensor> attend(Executor &exec, const AttentionEntry &a, const Tensor &q,
                                 const Tensor &k, const Tensor &v) {
  std::map<std::string, Tensor> in = {
      {a.attn->inputs[0], q}, {a.attn->inputs[1], k}, {a.attn->inputs[2], v}};
  std::map<std::string, Tensor> res = exec.run(a.entry->name, in);
  return {res.at(a.attn->outputs[0]).toFloat32(), res.at(a.attn->outputs[1]).toFloat32()};
}

/// One allgather of every rank's partial, `send` = [rows * dv outputs, rows
/// LSEs] (rows and dv those of `out`), and their merge into `out` and `lse`
/// (on every rank).
void exchangeAndMerge(Communicator &comm, const std::vector<float> &send, Tensor &out,
                      Tensor &lse) {
  const int64_t dv = out.shape()[3], rows = out.numel() / dv;
  std::vector<float> recv(send.size() * size_t(comm.size()));
  comm.allGather(send.data(), send.size() * 4, recv.data());
  std::vector<AttentionPartial> parts;
  for (int r = 0; r < comm.size(); ++r) {
    const float *base = recv.data() + size_t(r) * send.size();
    parts.push_back({base, base + rows * dv});
  }
  mergeAttentionPartials(parts, rows, dv, out.f32(), lse.f32());
}

/// Keys split by sequence: this rank's partial over its shard, one
/// allgather of every rank's (out, lse), the merge (on every rank).
CallTimes splitKeys(Executor &exec, Communicator &comm, const AttentionEntry &a,
                    const Tensor &q, const Tensor &kShard, const Tensor &vShard,
                    std::pair<int64_t, int64_t> keys, Tensor &out, Tensor &lse,
                    Report &rep) {
  const int64_t dv = out.shape()[3], rows = out.numel() / dv;
  rep.begin = keys.first;
  rep.end = keys.second;
  rep.shardBytes = int64_t(kShard.bytes() + vShard.bytes());
  std::vector<float> send(size_t(rows * (dv + 1)));
  CallTimes t;
  auto t0 = std::chrono::steady_clock::now();
  if (keys.second > keys.first) {
    auto [o, l] = attend(exec, a, q, kShard, vShard);
    std::memcpy(send.data(), o.f32(), size_t(rows * dv) * 4);
    std::memcpy(send.data() + rows * dv, l.f32(), size_t(rows) * 4);
  } else {
    std::fill(send.begin(), send.begin() + rows * dv, 0.0f);
    std::fill(send.begin() + rows * dv, send.end(), -INFINITY);
  }
  t.kernelMs = msSince(t0);
  double comm0 = comm.commSeconds;
  exchangeAndMerge(comm, send, out, lse);
  t.commMs = (comm.commSeconds - comm0) * 1e3;
  t.callMs = msSince(t0);
  return t;
}

/// A decode entry of sparse attention with its LSE: TokenSelect's
/// selection and the sparse attention over sinks, selection and window; or
/// the sparse attention alone (window + sinks).
struct SparseEntry {
  const EntryInfo *entry = nullptr;
  const manifest::KernelSpec *select = nullptr; ///< nullptr: window + sinks
  const manifest::KernelSpec *attn = nullptr;
};
/// Such an entry, or nullopt; throws one line for a sparse entry that
/// shard cannot split (another policy, Δ, no LSE).
std::optional<SparseEntry> sparseEntry(const EntryInfo &e, const std::string &module) {
  SparseEntry s{&e, nullptr, nullptr};
  bool sparse = false;
  for (const manifest::KernelSpec &k : e.kernels)
    sparse |= k.kind == manifest::KernelKind::Select ||
              k.kind == manifest::KernelKind::SparseAttention ||
              k.kind == manifest::KernelKind::DenseRows ||
              k.kind == manifest::KernelKind::DeltaCorrect;
  if (!sparse)
    return std::nullopt;
  auto refuse = [&](const manifest::KernelSpec &k, const std::string &why) {
    throw std::runtime_error(module + ": entry '" + e.name + "' has a " +
                             manifest::toString(k.kind) + " kernel ('" + k.name + "'): " + why);
  };
  for (const manifest::KernelSpec &k : e.kernels) {
    if (k.kind == manifest::KernelKind::Select && !s.select && !s.attn)
      s.select = &k;
    else if (k.kind == manifest::KernelKind::SparseAttention && !s.attn)
      s.attn = &k;
    else
      refuse(k, "shard splits a decode entry of one selection (token-select) and one sparse "
                "attention with its LSE, or the sparse attention alone (window + sinks); "
                "Delta and other kernels do not shard yet");
  }
  if (!s.attn)
    refuse(*s.select, "its entry has no sparse attention");
  if (s.select && (s.select->select.policy != "token-select" || s.select->select.perKvHead))
    refuse(*s.select, "policy '" + s.select->select.policy +
                          "' does not shard yet: shard makes a global top-k for token-select "
                          "(and window + sinks needs no selection)");
  if (!s.attn->attention.withLse || s.attn->outputs.size() != 2)
    refuse(*s.attn, "it has no LSE output, which the merge needs (add `lse` to the attention)");
  if (s.select && s.attn->inputs.size() < 4)
    refuse(*s.attn, "it does not read the selection");
  return s;
}

/// Sparse decode over key shards: the selection made globally (token-select:
/// TokenSelectShard's two allgathers), then each rank attends, by the
/// module's full attention, to the keys of the pattern (sinks, selection,
/// window) that it holds, and the partials merge by LSE as in splitKeys.
/// `selection` gets the global selection, [B, 1, 1, slots] int32 as the
/// select kernel writes it (ascending, -1 in unused slots; all -1 when the
/// context fits the pattern and every key is attended).
CallTimes sparseDecode(Executor &exec, Communicator &comm, const SparseEntry &sp,
                       const AttentionEntry &full, const Tensor &q, const Tensor &kShard,
                       const Tensor &vShard, std::pair<int64_t, int64_t> keys, int64_t nk,
                       Tensor &out, Tensor &lse, Tensor &selection, Report &rep) {
  const int64_t B = q.shape()[0], hq = q.shape()[1], d = q.shape()[3],
                hkv = kShard.shape()[1], dv = out.shape()[3], n = keys.second - keys.first;
  const manifest::SparsePattern &pat = sp.attn->sparse;
  const int64_t pos = nk - 1; // the decode row
  rep.begin = keys.first;
  rep.end = keys.second;
  rep.shardBytes = int64_t(kShard.bytes() + vShard.bytes());
  CallTimes t;
  auto t0 = std::chrono::steady_clock::now();
  double comm0 = comm.commSeconds;
  // The selection, unless the context fits the pattern (the runtime's
  // dense fallback: every key).
  const bool everyKey = sp.attn->denseFallback && nk <= sp.attn->denseFallback->maxKeys;
  std::vector<std::vector<int64_t>> chosen(static_cast<size_t>(B));
  std::fill(selection.i32(), selection.i32() + selection.numel(), -1);
  if (sp.select && !everyKey) {
    const int64_t budget = int64_t(sp.select->select.knobs.at("budget"));
    const int64_t candBegin = pat.sinks,
                  candEnd = pat.sinks + geometry::candidateCount<int64_t>(pos, nk, pat.sinks,
                                                                         pat.window);
    Tensor qf = q.toFloat32(); // K/V in float16: widened for the scores
    Tensor kf = kShard.dtype() == DType::Float32 ? kShard : kShard.toFloat32();
    TokenSelectShard mine(qf.f32(), kf.f32(), B, hq, hkv, d, n, keys.first, candBegin, candEnd);
    std::vector<SoftmaxStats> st = mine.stats();
    std::vector<SoftmaxStats> stAll(st.size() * size_t(comm.size()));
    comm.allGather(st.data(), st.size() * sizeof(SoftmaxStats), stAll.data());
    std::vector<std::vector<SoftmaxStats>> perRank;
    for (int r = 0; r < comm.size(); ++r)
      perRank.emplace_back(stAll.begin() + std::ptrdiff_t(size_t(r) * st.size()),
                           stAll.begin() + std::ptrdiff_t(size_t(r + 1) * st.size()));
    std::vector<VoteCandidate> best = mine.bestVotes(TokenSelectShard::combine(perRank), budget);
    std::vector<VoteCandidate> bestAll(best.size() * size_t(comm.size()));
    comm.allGather(best.data(), best.size() * sizeof(VoteCandidate), bestAll.data());
    std::vector<const VoteCandidate *> ptrs;
    for (int r = 0; r < comm.size(); ++r)
      ptrs.push_back(bestAll.data() + size_t(r) * best.size());
    chosen = TokenSelectShard::select(ptrs, B, budget);
    const int64_t slots = selection.shape()[3];
    for (int64_t b = 0; b < B; ++b)
      for (size_t i = 0; i < chosen[size_t(b)].size() && int64_t(i) < slots; ++i)
        selection.i32()[b * slots + int64_t(i)] = int32_t(chosen[size_t(b)][i]);
  }
  t.selectMs = msSince(t0);
  // Each batch's keys of the pattern held here, gathered into K/V of their
  // own; the full attention over them.
  const int64_t rows = hq; // per batch: [Hq, 1] rows
  std::vector<float> send(size_t(B * rows * (dv + 1)));
  rep.attended = 0;
  auto tk = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> take; // local rows, ascending
    auto held = [&](int64_t j) { return j >= keys.first && j < keys.second; };
    const int64_t winBegin = geometry::windowBegin<int64_t>(pos, pat.sinks, pat.window);
    for (int64_t j = keys.first; j < keys.second; ++j)
      if (everyKey || j < pat.sinks || j >= winBegin)
        take.push_back(j - keys.first);
    for (int64_t j : chosen[size_t(b)])
      if (held(j))
        take.push_back(j - keys.first);
    std::sort(take.begin(), take.end());
    take.erase(std::unique(take.begin(), take.end()), take.end());
    rep.attended += int64_t(take.size());
    float *o = send.data() + b * rows * dv, *l = send.data() + B * rows * dv + b * rows;
    if (take.empty()) { // the merge's identity
      std::fill(o, o + rows * dv, 0.0f);
      std::fill(l, l + rows, -INFINITY);
      continue;
    }
    auto [ob, lb] = attend(exec, full, gatherRows(q, b, {0}), gatherRows(kShard, b, take),
                           gatherRows(vShard, b, take));
    std::memcpy(o, ob.f32(), size_t(rows * dv) * 4);
    std::memcpy(l, lb.f32(), size_t(rows) * 4);
  }
  t.kernelMs = msSince(tk);
  exchangeAndMerge(comm, send, out, lse);
  t.commMs = (comm.commSeconds - comm0) * 1e3;
  t.callMs = msSince(t0);
  return t;
}

/// Causal self-attention over zigzag chunks (ring attention, Liu et al.
/// 2023, with the load balance of Brandon et al.'s "striped" / zigzag
/// orders): the sequence is cut into 2N chunks; rank r holds the queries
/// and K/V of chunks r and 2N-1-r. In N steps the K/V chunks travel round
/// the ring; a query chunk attends causally to its own K/V chunk (the
/// causal entry: Nq = Nk), fully to earlier ones (the full entry), not to
/// later ones. Each query chunk's partials merge by LSE; one gather then
/// gives rank 0 the whole output (each rank does the same work).
CallTimes ringPrefill(Executor &exec, Communicator &comm, const AttentionEntry &causal,
                      const AttentionEntry &full, const Tensor &q, const Tensor &k,
                      const Tensor &v, Tensor &out, Tensor &lse, Report &rep) {
  const int rank = comm.rank(), N = comm.size();
  const int64_t n = q.shape()[2], B = q.shape()[0], hq = q.shape()[1], hkv = k.shape()[1],
                d = k.shape()[3], dv = v.shape()[3];
  auto chunk = [&](int c) { return keyShard(n, c, 2 * N); };
  auto chunksOf = [&](int r) { return std::array<int, 2>{r, 2 * N - 1 - r}; };
  auto rowsOf = [&](int c) { return chunk(c).second - chunk(c).first; };
  // This rank's K/V chunks, packed [k_a, k_b, v_a, v_b] in their own
  // element type as they travel.
  const DType kvType = k.dtype();
  const size_t es = dtypeSize(kvType);
  auto packed = [&](int r) {
    auto [a, b] = chunksOf(r);
    return size_t(B * hkv * (rowsOf(a) + rowsOf(b)) * (d + dv)) * es;
  };
  std::array<int, 2> mine = chunksOf(rank);
  std::vector<uint8_t> held(packed(rank));
  {
    uint8_t *p = held.data();
    for (const Tensor *t : {&k, &v})
      for (int c : mine) {
        size_t rowBytes = size_t(t->shape()[3]) * es;
        copyRowBlocks(t->raw(), n, chunk(c).first, p, rowsOf(c), 0, B * hkv, rowsOf(c),
                      rowBytes);
        p += size_t(B * hkv * rowsOf(c)) * rowBytes;
      }
  }
  std::array<Tensor, 2> qc;
  for (int i = 0; i < 2; ++i)
    qc[size_t(i)] = keyRows(q, chunk(mine[size_t(i)]).first, chunk(mine[size_t(i)]).second);
  rep.begin = chunk(mine[0]).first;
  rep.end = chunk(mine[0]).second;
  rep.begin2 = chunk(mine[1]).first;
  rep.end2 = chunk(mine[1]).second;
  rep.shardBytes = int64_t(held.size());
  std::array<std::vector<std::pair<Tensor, Tensor>>, 2> partials;
  CallTimes t;
  auto t0 = std::chrono::steady_clock::now();
  double comm0 = comm.commSeconds;
  // The output's gather to rank 0: every rank's two query chunks in slots
  // of the largest chunk (checked before the ring runs).
  const int64_t maxRows = (n + 2 * N - 1) / (2 * N);
  const size_t slot = size_t(B * hq * maxRows * (dv + 1));
  comm.checkBytes(2 * slot * 4, "the output's gather");
  for (int step = 0; step < N; ++step) {
    const int owner = (rank - step + N) % N;
    std::array<int, 2> theirs = chunksOf(owner);
    // Unpack the held chunks as tensors of the module's K/V type.
    std::array<Tensor, 2> kc, vc;
    const uint8_t *p = held.data();
    for (int kv = 0; kv < 2; ++kv)
      for (int i = 0; i < 2; ++i) {
        int64_t len = rowsOf(theirs[size_t(i)]);
        Tensor f({B, hkv, len, kv == 0 ? d : dv}, kvType);
        if (f.bytes())
          std::memcpy(f.raw(), p, f.bytes());
        p += f.bytes();
        (kv == 0 ? kc : vc)[size_t(i)] = f;
      }
    auto tk = std::chrono::steady_clock::now();
    for (int qi = 0; qi < 2; ++qi)
      for (int ki = 0; ki < 2; ++ki) {
        int qchunk = mine[size_t(qi)], kchunk = theirs[size_t(ki)];
        if (kchunk > qchunk || rowsOf(qchunk) == 0 || rowsOf(kchunk) == 0)
          continue; // later keys: hidden
        partials[size_t(qi)].push_back(attend(exec, kchunk == qchunk ? causal : full,
                                              qc[size_t(qi)], kc[size_t(ki)], vc[size_t(ki)]));
      }
    t.kernelMs += msSince(tk);
    if (step + 1 < N) {
      const int next = (rank + 1) % N, prev = (rank - 1 + N) % N;
      std::vector<uint8_t> incoming(packed((rank - step - 1 + 2 * N) % N));
      comm.sendRecv(held.data(), held.size(), next, incoming.data(), incoming.size(), prev);
      held.swap(incoming);
    }
  }
  // Merge each query chunk's partials; then every rank's chunks to rank 0.
  std::vector<float> send(2 * slot, 0.0f), recv(comm.rank() == 0 ? send.size() * size_t(N) : 0);
  for (int qi = 0; qi < 2; ++qi) {
    int64_t len = rowsOf(mine[size_t(qi)]), rows = B * hq * len;
    std::vector<AttentionPartial> parts;
    for (const auto &[o, l] : partials[size_t(qi)])
      parts.push_back({o.f32(), l.f32()});
    float *o = send.data() + size_t(qi) * slot;
    mergeAttentionPartials(parts, rows, dv, o, o + rows * dv);
  }
  comm.gather(send.data(), send.size() * 4, recv.data(), 0);
  for (int r = 0; r < (comm.rank() == 0 ? N : 0); ++r)
    for (int qi = 0; qi < 2; ++qi) {
      int c = chunksOf(r)[size_t(qi)];
      int64_t len = rowsOf(c);
      const float *o = recv.data() + (size_t(r) * 2 + size_t(qi)) * slot;
      copyRowBlocks(o, len, 0, out.f32(), n, chunk(c).first, B * hq, len, size_t(dv) * 4);
      copyRowBlocks(o + B * hq * len * dv, len, 0, lse.f32(), n, chunk(c).first, B * hq, len, 4);
    }
  t.commMs = (comm.commSeconds - comm0) * 1e3;
  t.callMs = msSince(t0);
  return t;
}

} // namespace

int runShard(const std::vector<std::string> &args) {
  std::string modulePath;
  std::vector<std::pair<std::string, std::string>> inputFiles, outputFiles;
  std::string selectionFile;
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
    } else if (take("--selection")) {
      if (!selectionFile.empty())
        shardUsageError("--selection given twice");
      selectionFile = value;
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
    // The communicator's errors name the rank already, in this form.
    std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(ranks) + ": ";
    std::fprintf(stderr, "deltaflow-run shard: error: %s%s\n",
                 msg.rfind(who, 0) == 0 ? "" : who.c_str(), msg.c_str());
  };
  std::unique_ptr<tbb::global_control> threadLimit;
  if (threads > 0)
    threadLimit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, threads);
  // mpirun binds each rank to one core by default (Open MPI's --bind-to
  // core for two processes or fewer): its threads then share that core.
  cpu_set_t cpus;
  if (rank == 0 && sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
    int allowed = CPU_COUNT(&cpus), wanted = threads > 0 ? threads
                                                         : int(std::thread::hardware_concurrency());
    if (allowed < wanted)
      std::fprintf(stderr,
                   "deltaflow-run shard: note: rank 0 may run on %d core(s) (its CPU affinity, "
                   "e.g. mpirun's default --bind-to core) but would use %d thread(s); give "
                   "mpirun --bind-to none, or --map-by slot:PE=%d\n",
                   allowed, wanted, wanted);
  }

  // Everything local first; then every rank learns whether all are ready.
  Status mine;
  std::shared_ptr<Module> module;
  AttentionEntry one, causal, full; // one: split mode; causal + full: ring
  SparseEntry sparse;                // with full: sparse decode
  bool ring = false;
  Tensor q, k, v, kShard, vShard;
  std::pair<int64_t, int64_t> keys{0, 0};
  try {
    module = Module::load(modulePath);
    std::vector<AttentionEntry> found;
    std::vector<SparseEntry> sparseFound;
    for (const EntryInfo &e : module->entries())
      if (auto a = attentionEntry(module->entry(e.name)))
        found.push_back(*a);
      else if (auto sp = sparseEntry(module->entry(e.name), modulePath))
        sparseFound.push_back(*sp);
    if (sparseFound.size() == 1 && found.size() == 1 && module->entries().size() == 2 &&
        !found[0].attn->attention.causal) {
      sparse = sparseFound[0];
      full = found[0];
      if (!fullRunsLike(sparse.attn->attention, full.attn->attention))
        throw std::runtime_error(modulePath + ": its sparse attention ('" + sparse.attn->name +
                                 "') and full attention ('" + full.attn->name +
                                 "') differ in shape, scale or type, or the sparse one has "
                                 "an offset");
      one = {sparse.entry, sparse.attn};
    } else if (!sparseFound.empty()) {
      throw std::runtime_error(
          modulePath + ": entry '" + sparseFound[0].entry->name +
          "' is sparse; shard runs it with a full (non-causal) attention with its LSE as "
          "the module's one other entry, over each rank's keys of the pattern (e.g. "
          "examples/attention_ring.mlir compiled with --sparsity=\"policy=token-select "
          "entries=causal ...\")");
    } else if (found.size() == 1 && module->entries().size() == 1) {
      one = found[0];
    } else if (found.size() == 2 && module->entries().size() == 2 &&
               found[0].attn->attention.causal != found[1].attn->attention.causal) {
      causal = found[0].attn->attention.causal ? found[0] : found[1];
      full = found[0].attn->attention.causal ? found[1] : found[0];
      if (!fullRunsLike(causal.attn->attention, full.attn->attention))
        throw std::runtime_error(modulePath + ": its causal and full attentions differ in "
                                 "shape, scale or type, or the causal one has an offset");
      one = causal; // decode (one row) runs the causal entry on every shard
    } else {
      throw std::runtime_error(
          modulePath + ": its entry is not one dense attn.attention with its LSE "
                       "output (the merge needs each shard's log-sum-exp; "
                       "examples/attention_lse.mlir is one), nor a causal and a full "
                       "one for a ring prefill (examples/attention_ring.mlir)");
    }
    const EntryInfo &entry = *one.entry;
    if (!selectionFile.empty()) {
      if (!sparse.select)
        throw std::runtime_error("--selection writes a token-select module's global "
                                 "selection; " + modulePath + " makes none");
      outputFiles.emplace_back("", selectionFile); // checked for writing below
    }
    std::set<std::string> paths;
    for (const auto &[name, file] : outputFiles) {
      if (!paths.insert(file).second)
        throw std::runtime_error(file + ": named by two outputs");
      if (!name.empty() && !entry.findOutput(name))
        throw std::runtime_error("entry '" + entry.name + "' has no output '" + name + "'");
      std::string dir = std::filesystem::path(file).parent_path().string();
      if (rank == 0 && access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
        throw std::runtime_error(file + ": cannot write: " + std::strerror(errno));
    }
    std::map<std::string, Tensor> inputs;
    for (const auto &[name, file] : inputFiles) {
      const TensorSpec *spec = entry.findInput(name);
      if (!spec)
        throw std::runtime_error("entry '" + entry.name + "' has no input '" + name + "'");
      if (inputs.count(name))
        throw std::runtime_error("input '" + name + "' bound twice");
      inputs[name] = convertInput(readNpy(file), spec->dtype);
    }
    for (const std::string &name : {one.attn->inputs[0], one.attn->inputs[1],
                                    one.attn->inputs[2]}) // q, k, v (not a selection)
      if (!inputs.count(name))
        throw std::runtime_error("input '" + name + "' is not bound (--input " + name +
                                 "=FILE.npy)");
    q = inputs.at(one.attn->inputs[0]);
    k = inputs.at(one.attn->inputs[1]);
    v = inputs.at(one.attn->inputs[2]);
    for (const Tensor *t : std::initializer_list<const Tensor *>{&q, &k, &v})
      if (t->rank() != 4)
        throw std::runtime_error("q, k and v must be [B, H, N, D]; got " + t->shapeString());
    if (k.shape()[2] != v.shape()[2])
      throw std::runtime_error("k and v hold " + std::to_string(k.shape()[2]) + " and " +
                               std::to_string(v.shape()[2]) + " keys");
    if (k.shape()[2] < 1)
      throw std::runtime_error("no keys (k holds 0 rows)");
    // The shapes the module's attention takes (the sparse path addresses
    // rows by them before any kernel would check).
    const manifest::AttentionParams &ap = one.attn->attention;
    if (q.shape()[1] != ap.hq || k.shape()[1] != ap.hkv || v.shape()[1] != ap.hkv ||
        q.shape()[3] != ap.d || k.shape()[3] != ap.d || v.shape()[3] != ap.dv ||
        k.shape()[0] != q.shape()[0] || v.shape()[0] != q.shape()[0])
      throw std::runtime_error(
          "q " + q.shapeString() + ", k " + k.shapeString() + " and v " + v.shapeString() +
          " do not fit the module's attention: q [B, " + std::to_string(ap.hq) + ", Nq, " +
          std::to_string(ap.d) + "], k [B, " + std::to_string(ap.hkv) + ", Nk, " +
          std::to_string(ap.d) + "], v [B, " + std::to_string(ap.hkv) + ", Nk, " +
          std::to_string(ap.dv) + "]");
    mine.repeat = repeat;
    for (int i = 0; i < 3; ++i) {
      const Tensor &t = i == 0 ? q : i == 1 ? k : v;
      std::copy(t.shape().begin(), t.shape().end(), mine.shapes[i]);
      mine.dtypes[i] = int32_t(t.dtype());
    }
    // A static offset counts keys from each shard's own start: only an
    // offset that shows the row every key keeps its meaning.
    if (const auto &off = one.attn->attention.offset;
        one.attn->attention.causal && off && *off + mine.nq() < mine.nk())
      throw std::runtime_error(
          "the causal attention has offset(" + std::to_string(*off) +
          "), which hides keys from the query rows; split by keys, each shard would "
          "apply it to its own key numbers (give a module without a static offset)");
    if (sparse.entry && mine.nq() != 1) {
      throw std::runtime_error("sparse attention over key shards takes one query row "
                               "(decode, at the end of the keys), got " +
                               std::to_string(mine.nq()) + " rows");
    } else if (full.entry && !sparse.entry && mine.nq() > 1) {
      if (mine.nq() != mine.nk())
        throw std::runtime_error("a ring prefill takes as many query rows as keys (self-"
                                 "attention over one sequence), got " +
                                 std::to_string(mine.nq()) + " and " + std::to_string(mine.nk()));
      ring = true;
    } else if (one.attn->attention.causal && mine.nq() != 1) {
      throw std::runtime_error(
          "causal attention over key shards takes one query row (decode, at the end of "
          "the keys), got " + std::to_string(mine.nq()) +
          " rows; for a prefill give a module with a causal and a full attention "
          "(examples/attention_ring.mlir): a ring over zigzag chunks");
    }
    if (!ring) {
      keys = keyShard(mine.nk(), rank, ranks);
      kShard = keyRows(k, keys.first, keys.second);
      vShard = keyRows(v, keys.first, keys.second);
      k = v = Tensor(); // only the shard stays
    }
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
    if (std::memcmp(all[size_t(r)].shapes, all[0].shapes, sizeof all[0].shapes) != 0 ||
        std::memcmp(all[size_t(r)].dtypes, all[0].dtypes, sizeof all[0].dtypes) != 0) {
      if (rank == 0) {
        auto describe = [](const Status &st) {
          std::string d;
          for (int i = 0; i < 3; ++i) {
            d += std::string(i ? ", " : "") + "qkv"[i] + " " +
                 dtypeName(DType(st.dtypes[i])) + "[";
            for (int j = 0; j < 4; ++j)
              d += (j ? ", " : "") + std::to_string(st.shapes[i][j]);
            d += "]";
          }
          return d;
        };
        fail("rank " + std::to_string(r) + " read " + describe(all[size_t(r)]) + "; rank 0 " +
             describe(all[0]) + ": every rank must read the same inputs");
      }
      return 1;
    }
    if (all[size_t(r)].repeat != all[0].repeat) {
      if (rank == 0)
        fail("rank " + std::to_string(r) + " was given --repeat " +
             std::to_string(all[size_t(r)].repeat) + ", rank 0 " +
             std::to_string(all[0].repeat) + ": every rank must make as many calls");
      return 1;
    }
  }

  const std::vector<int64_t> &qs = q.shape();
  const int64_t dv = one.attn->attention.dv;
  Tensor out({qs[0], qs[1], qs[2], dv}), lse({qs[0], qs[1], qs[2]});
  Tensor selection({qs[0], 1, 1, sparse.select ? sparse.select->select.slots : 0},
                   DType::Int32);
  Report rep;
  rep.selectMs = rep.kernelMs = rep.callMs = rep.commMs =
      std::numeric_limits<double>::infinity();
  try {
    Executor exec(module, threads);
    for (int it = 0; it < repeat; ++it) {
      CallTimes t =
          ring ? ringPrefill(exec, *comm, causal, full, q, k, v, out, lse, rep)
          : sparse.entry
              ? sparseDecode(exec, *comm, sparse, full, q, kShard, vShard, keys, all[0].nk(),
                             out, lse, selection, rep)
              : splitKeys(exec, *comm, one, q, kShard, vShard, keys, out, lse, rep);
      rep.selectMs = std::min(rep.selectMs, t.selectMs);
      rep.kernelMs = std::min(rep.kernelMs, t.kernelMs);
      rep.commMs = std::min(rep.commMs, t.commMs);
      rep.callMs = std::min(rep.callMs, t.callMs);
    }
    std::vector<Report> reps(static_cast<size_t>(ranks));
    comm->allGather(&rep, sizeof rep, reps.data());
    if (rank == 0) {
      std::printf("shard: %d rank(s) over %s, %lld keys, %lld query row(s), %s; fastest of "
                  "%d call(s)\n",
                  ranks, comm->describe().c_str(), (long long)all[0].nk(),
                  (long long)all[0].nq(),
                  ring           ? "ring prefill over zigzag chunks"
                  : sparse.select ? "sparse decode, token-select's top-k over every rank's keys"
                  : sparse.entry  ? "sparse decode, window + sinks"
                                  : "keys split by sequence",
                  repeat);
      for (int r = 0; r < ranks; ++r) {
        const Report &x = reps[size_t(r)];
        std::string held = "[" + std::to_string(x.begin) + ", " + std::to_string(x.end) + ")";
        int64_t count = x.end - x.begin + x.end2 - x.begin2;
        if (ring)
          held += " + [" + std::to_string(x.begin2) + ", " + std::to_string(x.end2) + ")";
        std::string sparseTimes;
        if (sparse.entry) {
          char buf[96];
          std::snprintf(buf, sizeof buf, ", attends %lld, select %.3f ms", (long long)x.attended,
                        x.selectMs);
          sparseTimes = buf;
        }
        std::printf("  rank %d: %s %s (%lld)%s, K/V %.2f MiB, kernel %.3f ms, "
                    "%s %.3f ms, call %.3f ms (communication %.0f%%)\n",
                    r, ring ? "chunks" : "keys", held.c_str(), (long long)count,
                    sparse.entry ? sparseTimes.c_str() : "",
                    double(x.shardBytes) / (1 << 20), x.kernelMs,
                    ring ? "ring + gather" : sparse.select ? "allgathers" : "allgather",
                    x.commMs, x.callMs, x.callMs > 0 ? 100 * x.commMs / x.callMs : 0.0);
      }
      std::vector<std::pair<std::string, const Tensor *>> files;
      for (const auto &[name, file] : outputFiles)
        files.emplace_back(file, name.empty()                   ? &selection
                                 : name == one.attn->outputs[0] ? &out
                                                                : &lse);
      writeNpyAll(files, DType::Float32);
    }
  } catch (const std::exception &e) {
    fail(e.what());
    comm->abort(1);
  }
  return 0;
}

} // namespace deltaflow::rt
