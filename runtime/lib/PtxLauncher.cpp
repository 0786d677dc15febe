//===- PtxLauncher.cpp - launch a module's PTX kernels through the driver ---===//

#include "PtxLauncher.h"
#include "deltaflow/Common/PtxAbi.h"
#include "deltaflow/Common/SparseGeometry.h"
#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Runtime/Tensor.h"

#include "HalideRuntime.h"

#include <algorithm>
#include <cstddef>
#include <dlfcn.h>
#include <limits>
#include <stdexcept>

namespace deltaflow::rt {

/// CUDA's limit on grid dimensions y and z (x: 2^31 - 1).
constexpr int64_t kMaxGridYZ = 65535;

namespace {
/// A tensor's strides in elements, outermost first (as its shape).
std::vector<int64_t> stridesOf(const Tensor &t) {
  const halide_buffer_t *b = const_cast<Tensor &>(t).halideBuffer();
  std::vector<int64_t> s(size_t(b->dimensions));
  for (int i = 0; i < b->dimensions; ++i)
    s[size_t(b->dimensions - 1 - i)] = b->dim[i].stride;
  return s;
}

/// The element count of each shape, every one a valid int64 product (the
/// kernels' offsets are 64-bit). Throws "<what>: a buffer of [..] elements
/// overflows".
std::vector<uint64_t> elementCounts(const std::vector<std::vector<int64_t>> &shapes,
                                    const std::string &what) {
  std::vector<uint64_t> elements;
  for (const std::vector<int64_t> &sh : shapes) {
    int64_t n = 1;
    for (int64_t d : sh) {
      if (d < 0 || (d > 0 && n > std::numeric_limits<int64_t>::max() / d))
        throw std::runtime_error(what + ": a buffer of " + shapeString(sh) +
                                 " elements overflows");
      n *= d;
    }
    elements.push_back(uint64_t(n));
  }
  return elements;
}

/// Each buffer's shape against `want` (rank and sizes), naming it.
void expectShapes(const std::vector<std::vector<int64_t>> &shapes,
                  const std::vector<std::vector<int64_t>> &want,
                  const std::vector<const char *> &names, const std::string &what) {
  for (size_t i = 0; i < shapes.size(); ++i)
    if (shapes[i] != want[i])
      throw std::runtime_error(what + ": " + names[i] + " " + shapeString(shapes[i]) +
                               " (expected " + shapeString(want[i]) + ")");
}

/// One buffer per name, each of rank 4 (`names` as the messages say them).
void expectRank4(const std::vector<std::vector<int64_t>> &shapes,
                 const std::vector<uint64_t> &devicePtrs,
                 const std::vector<const char *> &names, const std::string &what) {
  if (shapes.size() != names.size() || devicePtrs.size() != names.size()) {
    std::string list;
    for (const char *n : names)
      list += std::string(list.empty() ? "" : ", ") + n;
    throw std::runtime_error(what + " takes " + std::to_string(names.size()) +
                             " buffers (" + list + "), got " +
                             std::to_string(shapes.size()));
  }
  for (size_t i = 0; i < names.size(); ++i)
    if (shapes[i].size() != 4)
      throw std::runtime_error(what + ": " + names[i] + " " + shapeString(shapes[i]) +
                               " is not of rank 4");
}

/// 1-D memref descriptors {allocated, aligned, offset 0, size, stride 1}.
void pushDescriptor(std::vector<uint64_t> &params, uint64_t ptr, uint64_t n) {
  params.insert(params.end(), {ptr, ptr, 0, n, 1});
}
} // namespace

PtxPackPlan planPack(const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &strides, size_t elementBytes) {
  if (shape.size() != 4 || strides.size() != 4)
    throw std::runtime_error("a strided view of rank " + std::to_string(shape.size()) +
                             "; the tensor-core kernels take [B, H, N, D]");
  int64_t B = shape[0], H = shape[1], N = shape[2], D = shape[3];
  int64_t pitch = strides[1];
  bool heads = strides[3] == 1 && strides[2] == D && pitch >= N * D &&
               (B <= 1 || strides[0] == H * pitch);
  if (!heads)
    throw std::runtime_error(
        "a view " + shapeString(shape) + " with strides " + shapeString(strides) +
        "; the tensor-core kernels take [B, H, N, D] views whose only gaps lie "
        "between heads (a KV-cache view)");
  PtxPackPlan p;
  p.widthBytes = uint64_t(N * D) * elementBytes;
  p.height = uint64_t(B * H);
  p.srcPitchBytes = uint64_t(pitch) * elementBytes;
  return p;
}

PtxPackPlan planPack(const Tensor &view) {
  return planPack(view.shape(), stridesOf(view), dtypeSize(view.dtype()));
}

PtxLaunchPlan planAttentionLaunch(
    const manifest::PtxLaunch &launch, const manifest::AttentionParams &spec,
    const std::vector<std::vector<int64_t>> &shapes,
    const std::vector<uint64_t> &devicePtrs,
    const manifest::SparsePattern *sparse) {
  const bool gather = sparse && sparse->slots > 0;
  size_t buffers = (spec.withLse ? 5 : 4) + (gather ? 1 : 0);
  if (shapes.size() != buffers || devicePtrs.size() != buffers)
    throw std::runtime_error("tensor-core attention takes " +
                             std::to_string(buffers) + " buffers, got " +
                             std::to_string(shapes.size()));
  // Every shape, including the dynamic batch, against q's: the kernel
  // trusts them (no bounds checks on the device).
  std::vector<const char *> names = {"query", "key", "value", "output", "lse"};
  if (gather)
    names.insert(names.begin() + 3, "indices");
  names.resize(buffers);
  for (size_t i = 0; i < buffers; ++i) {
    size_t rank = std::string(names[i]) == "lse" ? 3u : 4u;
    if (shapes[i].size() != rank)
      throw std::runtime_error(std::string("tensor-core attention: ") +
                               names[i] + " " + shapeString(shapes[i]) +
                               " is not of rank " + std::to_string(rank));
  }
  const std::vector<int64_t> &q = shapes[0], &k = shapes[1], &v = shapes[2];
  int64_t batch = q[0], nq = q[2], nk = k[2];
  if (k[2] != v[2])
    throw std::runtime_error("key and value lengths differ (" +
                             std::to_string(k[2]) + " vs " +
                             std::to_string(v[2]) + ")");
  std::vector<std::vector<int64_t>> want = {{batch, spec.hq, nq, spec.d},
                                            {batch, spec.hkv, nk, spec.d},
                                            {batch, spec.hkv, nk, spec.dv},
                                            {batch, spec.hq, nq, spec.dv},
                                            {batch, spec.hq, nq}};
  if (gather) {
    // [B, Hs, ceil(Nq / chunk), slots]; Hs as compiled (1 or Hkv).
    int64_t hs = shapes[3][1];
    if (hs != 1 && hs != spec.hkv)
      throw std::runtime_error("tensor-core attention: indices " +
                               shapeString(shapes[3]) + " have " +
                               std::to_string(hs) + " head sets (1 or " +
                               std::to_string(spec.hkv) + ")");
    want.insert(want.begin() + 3, {batch, hs,
                                   (nq + sparse->chunk - 1) / sparse->chunk,
                                   sparse->slots});
  }
  want.resize(buffers);
  for (size_t i = 1; i < buffers; ++i)
    if (shapes[i] != want[i])
      throw std::runtime_error(std::string("tensor-core attention: ") +
                               names[i] + " " + shapeString(shapes[i]) +
                               " does not match query " + shapeString(q) +
                               " (expected " + shapeString(want[i]) + ")");
  if (q != want[0])
    throw std::runtime_error("tensor-core attention: query " + shapeString(q) +
                             " is not [B, " + std::to_string(spec.hq) +
                             ", Nq, " + std::to_string(spec.d) + "]");
  // The kernel's element offsets are 64-bit, its buffer sizes too; keep
  // every count a valid int64 product.
  std::vector<uint64_t> elements = elementCounts(shapes, "tensor-core attention");
  if (nk < 1)
    throw std::runtime_error("attention needs at least one key (Nk = 0)");
  if (spec.causal && !spec.offset && nq > nk)
    throw std::runtime_error(
        "causal attention without an offset takes the queries as the last Nq "
        "of the Nk keys, so Nq <= Nk; got Nq = " + std::to_string(nq) +
        ", Nk = " + std::to_string(nk));
  int64_t gx = (nq + launch.rowsPerBlock - 1) / launch.rowsPerBlock;
  if (spec.hq > kMaxGridYZ || batch > kMaxGridYZ ||
      gx > std::numeric_limits<int32_t>::max())
    throw std::runtime_error("grid (" + std::to_string(gx) + ", " +
                             std::to_string(spec.hq) + ", " +
                             std::to_string(batch) +
                             ") exceeds the CUDA grid limits");
  PtxLaunchPlan p;
  p.grid = {unsigned(gx), unsigned(spec.hq), unsigned(batch)};
  p.threads = unsigned(launch.threads);
  p.sharedBytes = unsigned(launch.sharedBytes);
  // MLIR's memref calling convention, rank 1: {allocated, aligned, offset,
  // size, stride}.
  for (size_t i = 0; i < buffers; ++i)
    pushDescriptor(p.params, devicePtrs[i], elements[i]);
  p.params.push_back(uint64_t(nq));
  p.params.push_back(uint64_t(nk));
  return p;
}

PtxSelectPlan planSelectLaunch(const manifest::PtxLaunch &launch,
                               const manifest::SelectParams &select,
                               const std::vector<std::vector<int64_t>> &shapes,
                               const std::vector<uint64_t> &devicePtrs,
                               uint64_t scratch) {
  expectRank4(shapes, devicePtrs, {"query", "key", "indices"}, "device selection");
  const std::vector<int64_t> &q = shapes[0], &k = shapes[1], &ix = shapes[2];
  int64_t B = q[0], hq = q[1], nq = q[2], d = q[3], hkv = k[1], nk = k[2];
  if (k[0] != B || k[3] != d || hkv < 1 || hq % hkv != 0)
    throw std::runtime_error("device selection: key " + shapeString(k) +
                             " does not match query " + shapeString(q));
  int64_t C = (nq + select.chunk - 1) / select.chunk;
  std::vector<int64_t> wantIdx = {B, 1, C, select.slots};
  if (ix != wantIdx)
    throw std::runtime_error("device selection: indices " + shapeString(ix) +
                             " (expected " + shapeString(wantIdx) + ")");
  for (const std::vector<int64_t> &sh : shapes)
    for (int64_t x : sh)
      if (x < 0 || x > (int64_t(1) << 40))
        throw std::runtime_error("device selection: a dimension of " +
                                 shapeString(sh) + " is out of range");
  int64_t NB = (nk + 255) / 256, NP = 8 * NB;
  int64_t NS = (nk + manifest::kSelectTopKSlice - 1) / manifest::kSelectTopKSlice;
  if (C > kMaxGridYZ || B > kMaxGridYZ || hq > kMaxGridYZ)
    throw std::runtime_error("device selection: grid beyond the CUDA limits");
  // Scratch: qbar [B, C, Hq, D], stats [B, C, NP, Hq, 2], hstats [B, C, Hq,
  // 2], vote [B, C, Nk], scores [B, C, Hq, Nk] (f32), hist [B, C,
  // kSelectHistWords] (i32), each 256-byte aligned.
  if (nk > manifest::kSelectMaxKeys)
    throw std::runtime_error("device selection: " + std::to_string(nk) +
                             " keys (its top-k takes up to " +
                             std::to_string(manifest::kSelectMaxKeys) + ")");
  std::vector<int64_t> counts = {B * C * hq * d,  B * C * NP * hq * 2,
                                 B * C * hq * 2,  B * C * nk,
                                 B * C * hq * nk, B * C * manifest::kSelectHistWords};
  PtxSelectPlan p;
  std::vector<uint64_t> at, sizes;
  for (int64_t n : counts) {
    at.push_back(scratch + p.scratchBytes);
    sizes.push_back(uint64_t(n));
    p.scratchBytes += (uint64_t(n) * 4 + 255) / 256 * 256;
  }
  auto elements = [](const std::vector<int64_t> &sh) {
    uint64_t n = 1;
    for (int64_t x : sh)
      n *= uint64_t(x);
    return n;
  };
  std::vector<uint64_t> params;
  auto buffer = [&](uint64_t ptr, uint64_t n) {
    params.insert(params.end(), {ptr, ptr, 0, n, 1});
  };
  buffer(devicePtrs[0], elements(q));
  buffer(devicePtrs[1], elements(k));
  for (size_t i = 0; i < counts.size(); ++i)
    buffer(at[i], sizes[i]);
  buffer(devicePtrs[2], elements(ix));
  params.push_back(uint64_t(nq));
  params.push_back(uint64_t(nk));
  struct Step {
    const char *entry;
    std::array<int64_t, 3> grid;
    unsigned threads;
  };
  const Step steps[] = {{"_qbar", {C, hq, B}, 1024},
                        {"_stats", {NB, C, B}, 256},
                        {"_merge", {hq, C, B}, 256},
                        {"_vote", {NB, C, B}, 256},
                        {"_topk_cand", {NS, C, B}, 1024},
                        {"_topk_thresh", {C, B, 1}, 1024},
                        {"_topk_write", {NS, C, B}, 1024}};
  for (const Step &s : steps) {
    if (s.grid[0] == 0 || s.grid[1] == 0 || s.grid[2] == 0)
      continue;
    if (s.grid[0] > std::numeric_limits<int32_t>::max())
      throw std::runtime_error("device selection: grid beyond the CUDA limits");
    PtxLaunchPlan lp;
    lp.grid = {unsigned(s.grid[0]), unsigned(s.grid[1]), unsigned(s.grid[2])};
    lp.threads = s.threads;
    lp.sharedBytes = unsigned(launch.sharedBytes);
    lp.params = params;
    p.steps.push_back(std::move(lp));
    p.entries.push_back(s.entry);
  }
  return p;
}

PtxSelectPlan planDecodeLaunch(const manifest::PtxLaunch &launch,
                               const manifest::AttentionParams &spec,
                               const std::vector<std::vector<int64_t>> &shapes,
                               const std::vector<uint64_t> &devicePtrs,
                               uint64_t scratch) {
  // The buffers and shapes as the tile takes them (one query row per CTA
  // row block, so grid limits are checked for Nq rows too).
  manifest::PtxLaunch tile = launch;
  tile.rowsPerBlock = 1;
  PtxLaunchPlan base = planAttentionLaunch(tile, spec, shapes, devicePtrs);
  const std::vector<int64_t> &q = shapes[0];
  int64_t B = q[0], nq = q[2], nk = shapes[1][2];
  if (nq < 1 || B < 1)
    return {}; // nothing to launch
  if (nq * spec.hkv > kMaxGridYZ || nq > int64_t(std::numeric_limits<int32_t>::max()))
    throw std::runtime_error("decode attention: " + std::to_string(nq) +
                             " query rows are beyond the CUDA grid limits");
  // Keys per split: a multiple of 256, about kDecodeTargetCtas CTAs.
  int64_t perSplit = std::max<int64_t>(1, nq * spec.hkv * B);
  int64_t splitsWanted = std::max<int64_t>(1, kDecodeTargetCtas / perSplit);
  int64_t kps = (nk + splitsWanted - 1) / splitsWanted;
  kps = std::max<int64_t>(256, (kps + 255) / 256 * 256);
  int64_t S = (nk + kps - 1) / kps;
  // Scratch: partO [B, Hq, Nq, S, D] and partL [B, Hq, Nq, S], f32, each
  // 256-byte aligned.
  uint64_t rows = uint64_t(B) * uint64_t(spec.hq) * uint64_t(nq) * uint64_t(S);
  uint64_t oCount = rows * uint64_t(spec.dv);
  PtxSelectPlan p;
  uint64_t oAt = scratch, lAt = scratch + (oCount * 4 + 255) / 256 * 256;
  p.scratchBytes = (lAt - scratch) + (rows * 4 + 255) / 256 * 256;
  // q, k, v, out[, lse] as planned, then the scratch, Nq, Nk, keysPerSplit.
  std::vector<uint64_t> params(base.params.begin(), base.params.end() - 2);
  params.insert(params.end(), {oAt, oAt, 0, oCount, 1, lAt, lAt, 0, rows, 1});
  params.insert(params.end(), {uint64_t(nq), uint64_t(nk), uint64_t(kps)});
  PtxLaunchPlan split, merge;
  split.grid = {unsigned(S), unsigned(nq * spec.hkv), unsigned(B)};
  split.threads = unsigned(ptx_abi::kDecodeSplitThreads);
  merge.grid = {unsigned(nq), unsigned(spec.hq), unsigned(B)};
  merge.threads = unsigned(ptx_abi::kDecodeMergeThreads);
  for (PtxLaunchPlan *lp : {&split, &merge}) {
    lp->sharedBytes = unsigned(launch.sharedBytes);
    lp->params = params;
    p.steps.push_back(*lp);
  }
  p.entries = {"_split", "_merge"};
  return p;
}

PtxSelectPlan planDenseRowsLaunch(const manifest::PtxLaunch &launch,
                                  const manifest::AttentionParams &spec,
                                  int64_t stride,
                                  const std::vector<std::vector<int64_t>> &shapes,
                                  const std::vector<uint64_t> &devicePtrs,
                                  uint64_t scratch, int64_t rowsAfter) {
  const std::string what = "tensor-core dense rows";
  std::vector<const char *> names = {"query", "key", "value", "rows"};
  expectRank4(shapes, devicePtrs, names, what);
  if (spec.hkv < 1 || spec.hq % spec.hkv != 0)
    throw std::runtime_error(what + ": " + std::to_string(spec.hq) +
                             " query heads over " + std::to_string(spec.hkv) +
                             " KV heads");
  if (stride < 1 || launch.rowsPerBlock < 1 || rowsAfter < 0)
    throw std::runtime_error(what + ": stride " + std::to_string(stride) +
                             ", rows per block " + std::to_string(launch.rowsPerBlock) +
                             " or rows after " + std::to_string(rowsAfter) +
                             " out of range");
  const std::vector<int64_t> &q = shapes[0], &k = shapes[1];
  int64_t B = q[0], nq = q[2], nk = k[2];
  if (nq < 0 || nq > (int64_t(1) << 40))
    throw std::runtime_error(what + ": query " + shapeString(q) + " is out of range");
  int64_t R = geometry::deltaStridedRows(nq, stride) + geometry::deltaExtraRows(stride);
  expectShapes(shapes,
               {{B, spec.hq, nq, spec.d},
                {B, spec.hkv, nk, spec.d},
                {B, spec.hkv, nk, spec.dv},
                {B, spec.hq, R, spec.dv}},
               names, what);
  std::vector<uint64_t> elements = elementCounts(shapes, what);
  if (nk < 1)
    throw std::runtime_error("attention needs at least one key (Nk = 0)");
  if (!spec.offset && nq > nk)
    throw std::runtime_error(
        "causal attention without an offset takes the queries as the last Nq "
        "of the Nk keys, so Nq <= Nk; got Nq = " + std::to_string(nq) +
        ", Nk = " + std::to_string(nk));
  if (B < 1)
    return {}; // nothing to launch
  // A split CTA's rows are (query head, used row) pairs of one KV head: G
  // times the strided rows and this call's tail. Keys per split: a multiple
  // of the quantum, about kDecodeTargetCtas CTAs.
  const int64_t quantum = ptx_abi::kRowsSplitQuantum;
  int64_t used = geometry::deltaStridedRows(nq, stride) +
                 geometry::deltaTailRows(nq, stride, rowsAfter);
  int64_t packed = used * (spec.hq / spec.hkv);
  int64_t tiles = (packed + launch.rowsPerBlock - 1) / launch.rowsPerBlock;
  int64_t perSplit = std::max<int64_t>(1, tiles * spec.hkv * B);
  int64_t splitsWanted = std::max<int64_t>(1, kDecodeTargetCtas / perSplit);
  int64_t kps = (nk + splitsWanted - 1) / splitsWanted;
  kps = std::max<int64_t>(quantum, (kps + quantum - 1) / quantum * quantum);
  int64_t S = (nk + kps - 1) / kps;
  if (spec.hq > kMaxGridYZ || S * B > kMaxGridYZ ||
      R > int64_t(std::numeric_limits<int32_t>::max()) ||
      tiles > int64_t(std::numeric_limits<int32_t>::max()))
    throw std::runtime_error(what + ": grid beyond the CUDA limits (" +
                             std::to_string(R) + " rows, " + std::to_string(spec.hq) +
                             " heads, " + std::to_string(S * B) + " splits x batch)");
  // Scratch: partO [B, Hq, R, S, Dv] and partL [B, Hq, R, S], f32, each
  // 256-byte aligned.
  uint64_t rows = uint64_t(B) * uint64_t(spec.hq) * uint64_t(R) * uint64_t(S);
  uint64_t oCount = rows * uint64_t(spec.dv);
  PtxSelectPlan p;
  uint64_t oAt = scratch, lAt = scratch + (oCount * 4 + 255) / 256 * 256;
  p.scratchBytes = (lAt - scratch) + (rows * 4 + 255) / 256 * 256;
  std::vector<uint64_t> params;
  for (size_t i = 0; i < 4; ++i)
    pushDescriptor(params, devicePtrs[i], elements[i]);
  pushDescriptor(params, oAt, oCount);
  pushDescriptor(params, lAt, rows);
  params.insert(params.end(),
                {uint64_t(nq), uint64_t(nk), uint64_t(kps), uint64_t(rowsAfter)});
  PtxLaunchPlan split, merge;
  split.grid = {unsigned(tiles), unsigned(spec.hkv), unsigned(S * B)};
  split.threads = unsigned(launch.threads);
  split.sharedBytes = unsigned(launch.sharedBytes);
  split.params = params;
  merge.grid = {unsigned(R), unsigned(spec.hq), unsigned(B)};
  merge.threads = unsigned(ptx_abi::kDecodeMergeThreads);
  merge.sharedBytes = unsigned(ptx_abi::mergeSharedBytes(spec.dv));
  merge.params = std::move(params);
  // No used rows (no queries): the merge alone writes the zeros.
  if (tiles > 0) {
    p.steps.push_back(std::move(split));
    p.entries.push_back("_split");
  }
  p.steps.push_back(std::move(merge));
  p.entries.push_back("_merge");
  return p;
}

PtxSelectPlan planDeltaCorrectLaunch(const manifest::PtxLaunch &launch, int64_t stride,
                                     const std::vector<std::vector<int64_t>> &shapes,
                                     const std::vector<uint64_t> &devicePtrs,
                                     int64_t rowsAfter) {
  const std::string what = "tensor-core delta correction";
  std::vector<const char *> names = {"sparse output", "dense rows", "output"};
  expectRank4(shapes, devicePtrs, names, what);
  if (stride < 1 || rowsAfter < 0)
    throw std::runtime_error(what + ": stride " + std::to_string(stride) +
                             " or rows after " + std::to_string(rowsAfter) +
                             " out of range");
  // The manifest sizes these temporaries from the compiled types, so the
  // sparse output's heads and head dim are the kernel's.
  const std::vector<int64_t> &s = shapes[0];
  int64_t B = s[0], hq = s[1], nq = s[2], dv = s[3];
  if (nq < 0 || nq > int64_t(std::numeric_limits<int32_t>::max()))
    throw std::runtime_error(what + ": sparse output " + shapeString(s) +
                             " is out of range");
  int64_t R = geometry::deltaStridedRows(nq, stride) + geometry::deltaExtraRows(stride);
  expectShapes(shapes, {{B, hq, nq, dv}, {B, hq, R, dv}, {B, hq, nq, dv}}, names, what);
  std::vector<uint64_t> elements = elementCounts(shapes, what);
  if (hq > kMaxGridYZ || B > kMaxGridYZ)
    throw std::runtime_error(what + ": grid beyond the CUDA limits");
  PtxSelectPlan p;
  if (nq < 1 || B < 1)
    return p; // nothing to launch
  if (launch.rowsPerBlock < 1)
    throw std::runtime_error(what + ": rows per block " +
                             std::to_string(launch.rowsPerBlock));
  PtxLaunchPlan lp;
  lp.grid = {unsigned((nq + launch.rowsPerBlock - 1) / launch.rowsPerBlock),
             unsigned(hq), unsigned(B)};
  lp.threads = unsigned(launch.threads);
  lp.sharedBytes = 0;
  for (size_t i = 0; i < 3; ++i)
    pushDescriptor(lp.params, devicePtrs[i], elements[i]);
  lp.params.insert(lp.params.end(), {uint64_t(nq), uint64_t(rowsAfter)});
  p.steps.push_back(std::move(lp));
  p.entries = {""};
  return p;
}

PtxSelectPlan planGemmLaunch(const manifest::PtxLaunch &launch,
                             const std::vector<std::vector<int64_t>> &shapes,
                             const std::vector<uint64_t> &devicePtrs) {
  const bool gemv = launch.abi == "gemv-v2";
  const std::string what = gemv ? "GEMV" : "tensor-core GEMM";
  if (shapes.size() != 3 || devicePtrs.size() != 3)
    throw std::runtime_error(what + " takes 3 buffers (a, weight, c), got " +
                             std::to_string(shapes.size()));
  const std::vector<int64_t> &a = shapes[0], &c = shapes[2];
  if (a.size() < 2 || c.size() != a.size() ||
      !std::equal(a.begin(), a.end() - 1, c.begin()))
    throw std::runtime_error(what + ": a " + shapeString(a) + " and c " +
                             shapeString(c) + " differ in their rows");
  std::vector<uint64_t> elements = elementCounts(shapes, what);
  int64_t k = a.back(), n = c.back();
  // The GEMV takes any column count (kGemvColumnsPerWarp a warp; the last
  // CTA's extra columns are not stored) and depths in 16-byte steps; the
  // GEMM whole tiles.
  const int64_t colQuantum = gemv ? 1 : ptx_abi::kGemmBlockN,
                depthQuantum = gemv ? ptx_abi::kGemvDepthQuantum : ptx_abi::kGemmBlockK;
  if (k < 1 || k % depthQuantum != 0 || n < 1 || n % colQuantum != 0 ||
      elements[1] != uint64_t(k) * uint64_t(n))
    throw std::runtime_error(what + ": weight " + shapeString(shapes[1]) +
                             " is not " + std::to_string(n) + " x " + std::to_string(k) +
                             " with columns a multiple of " + std::to_string(colQuantum) +
                             " and depth a multiple of " + std::to_string(depthQuantum));
  int64_t m = k ? int64_t(elements[0] / uint64_t(k)) : 0;
  PtxSelectPlan p;
  if (m < 1)
    return p; // nothing to launch
  if (launch.rowsPerBlock < 1)
    throw std::runtime_error(what + ": rows per block " +
                             std::to_string(launch.rowsPerBlock));
  // The GEMM: a CTA row per rowsPerBlock rows; the GEMV: every row in
  // each CTA (rowsPerBlock rows per pass over the weight).
  int64_t gy = gemv ? 1 : (m + launch.rowsPerBlock - 1) / launch.rowsPerBlock;
  if (gy > kMaxGridYZ)
    throw std::runtime_error(what + ": " + std::to_string(m) +
                             " rows exceed the grid's CUDA limit");
  PtxLaunchPlan lp;
  constexpr int64_t gemvCols = ptx_abi::kGemvWarps * ptx_abi::kGemvColumnsPerWarp;
  lp.grid = {unsigned(gemv ? (n + gemvCols - 1) / gemvCols : n / ptx_abi::kGemmBlockN),
             unsigned(gy), 1};
  lp.threads = unsigned(launch.threads);
  lp.sharedBytes = unsigned(launch.sharedBytes);
  for (size_t i = 0; i < 3; ++i)
    pushDescriptor(lp.params, devicePtrs[i], elements[i]);
  lp.params.push_back(uint64_t(m));
  p.steps.push_back(std::move(lp));
  p.entries = {""};
  return p;
}

std::string computeCapabilityString(int cc) {
  return std::to_string(cc / 10) + "." + std::to_string(cc % 10);
}

namespace {

/// CUDA_MEMCPY2D of the driver API (cuda.h, CUDA 12/13; a stable ABI):
/// the one 2-D copy that packs a strided KV-cache view.
struct Memcpy2D {
  size_t srcXInBytes = 0, srcY = 0;
  int srcMemoryType = 0;
  const void *srcHost = nullptr;
  uint64_t srcDevice = 0;
  void *srcArray = nullptr;
  size_t srcPitch = 0;
  size_t dstXInBytes = 0, dstY = 0;
  int dstMemoryType = 0;
  void *dstHost = nullptr;
  uint64_t dstDevice = 0;
  void *dstArray = nullptr;
  size_t dstPitch = 0;
  size_t WidthInBytes = 0, Height = 0;
};
constexpr int kMemoryTypeDevice = 2; // CU_MEMORYTYPE_DEVICE
// The layout of CUDA_MEMCPY2D_v2 on LP64 (128 bytes; the enums are ints).
static_assert(sizeof(Memcpy2D) == 128 && offsetof(Memcpy2D, srcHost) == 24 &&
                  offsetof(Memcpy2D, dstXInBytes) == 56 &&
                  offsetof(Memcpy2D, WidthInBytes) == 112,
              "Memcpy2D must match the driver's CUDA_MEMCPY2D");

/// The CUDA driver entry points used here (cuda.h is not needed: the types
/// are opaque handles and ints, and Memcpy2D above).
struct Driver {
  using CtxFn = int (*)(void *);
  using CtxPopFn = int (*)(void **);
  int (*moduleLoadData)(void **, const void *) = nullptr;
  int (*moduleUnload)(void *) = nullptr;
  int (*moduleGetFunction)(void **, void *, const char *) = nullptr;
  int (*funcSetAttribute)(void *, int, int) = nullptr;
  int (*launchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                      unsigned, unsigned, void *, void **, void **) = nullptr;
  CtxFn ctxPush = nullptr;
  CtxPopFn ctxPop = nullptr;
  int (*ctxGetDevice)(int *) = nullptr;
  int (*deviceGetAttribute)(int *, int, int) = nullptr;
  int (*getErrorString)(int, const char **) = nullptr;
  int (*memAlloc)(uint64_t *, size_t) = nullptr;
  int (*memFree)(uint64_t) = nullptr;
  int (*memcpy2DAsync)(const struct Memcpy2D *, void *) = nullptr;

  static const Driver &get() {
    static Driver d = [] {
      Driver d;
      void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_GLOBAL);
      if (!h)
        h = dlopen("libcuda.so", RTLD_LAZY | RTLD_GLOBAL);
      if (!h)
        return d;
      auto sym = [&](auto &fn, const char *name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      };
      sym(d.moduleLoadData, "cuModuleLoadData");
      sym(d.moduleUnload, "cuModuleUnload");
      sym(d.moduleGetFunction, "cuModuleGetFunction");
      sym(d.funcSetAttribute, "cuFuncSetAttribute");
      sym(d.launchKernel, "cuLaunchKernel");
      sym(d.ctxPush, "cuCtxPushCurrent_v2");
      sym(d.ctxPop, "cuCtxPopCurrent_v2");
      sym(d.ctxGetDevice, "cuCtxGetDevice");
      sym(d.deviceGetAttribute, "cuDeviceGetAttribute");
      sym(d.getErrorString, "cuGetErrorString");
      sym(d.memAlloc, "cuMemAlloc_v2");
      sym(d.memFree, "cuMemFree_v2");
      sym(d.memcpy2DAsync, "cuMemcpy2DAsync_v2");
      return d;
    }();
    return d;
  }
  bool complete() const {
    return moduleLoadData && moduleGetFunction && funcSetAttribute &&
           launchKernel && ctxPush && ctxPop && ctxGetDevice &&
           deviceGetAttribute;
  }
  std::string error(int rc) const {
    const char *s = nullptr;
    if (getErrorString)
      getErrorString(rc, &s);
    return "CUDA error " + std::to_string(rc) + (s ? std::string(" (") + s + ")" : "");
  }
};

constexpr int kAttrMaxDynamicShared = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
constexpr int kAttrCcMajor = 75;          // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrCcMinor = 76;          // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

/// The module's Halide CUDA context, current on this thread while alive.
class ContextScope {
public:
  ContextScope(const HalideCudaRuntime &h, const Driver &d, const std::string &where)
      : h_(h), d_(d) {
    void *ctx = nullptr;
    if (h.acquireContext(nullptr, &ctx, true) != 0 || !ctx)
      throw std::runtime_error(where + ": no CUDA context (" +
                               Module::takeHalideError() + ")");
    if (int rc = d.ctxPush(ctx); rc != 0) {
      h.releaseContext(nullptr);
      throw std::runtime_error(where + ": cuCtxPushCurrent: " + d.error(rc));
    }
  }
  ~ContextScope() {
    void *popped = nullptr;
    d_.ctxPop(&popped);
    h_.releaseContext(nullptr);
  }

private:
  const HalideCudaRuntime &h_;
  const Driver &d_;
};

} // namespace

namespace {
/// One device-to-device cuMemcpy2DAsync on stream 0, the context current.
void copy2D(const Driver &d, const std::string &where, uint64_t dst, size_t dstPitch,
            uint64_t src, size_t srcPitch, size_t widthBytes, size_t height) {
  Memcpy2D c;
  c.srcMemoryType = c.dstMemoryType = kMemoryTypeDevice;
  c.srcDevice = src;
  c.srcPitch = srcPitch;
  c.dstDevice = dst;
  c.dstPitch = dstPitch;
  c.WidthInBytes = widthBytes;
  c.Height = height;
  if (int rc = d.memcpy2DAsync(&c, nullptr); rc != 0)
    throw std::runtime_error(where + ": cuMemcpy2DAsync: " + d.error(rc));
}
} // namespace

bool deviceCopy2D(const HalideCudaRuntime &h, const std::string &where, uint64_t dst,
                  size_t dstPitch, uint64_t src, size_t srcPitch, size_t widthBytes,
                  size_t height) {
  const Driver &d = Driver::get();
  if (!d.memcpy2DAsync || !d.ctxPush || !d.ctxPop || !h.acquireContext ||
      !h.releaseContext)
    return false;
  if (widthBytes == 0 || height == 0)
    return true;
  ContextScope scope(h, d, where);
  copy2D(d, where, dst, dstPitch, src, srcPitch, widthBytes, height);
  return true;
}

PtxKernel::PtxKernel(const manifest::PtxLaunch &launch, const char *ptx,
                     HalideCudaRuntime halide, std::string where,
                     std::vector<std::string> entries,
                     std::shared_ptr<PtxPackScratch> pack)
    : launch_(launch), ptx_(ptx), halide_(halide), where_(std::move(where)),
      entries_(std::move(entries)),
      pack_(pack ? std::move(pack) : std::make_shared<PtxPackScratch>()) {
  if (!halide_.copyToDevice || !halide_.deviceMalloc || !halide_.deviceInterface ||
      !halide_.acquireContext || !halide_.releaseContext)
    throw std::runtime_error(where_ + ": the module's Halide runtime has no "
                             "CUDA entry points (was it compiled for "
                             "--target=cuda?)");
}

PtxKernel::~PtxKernel() {
  // The module's context may already be gone at exit; the driver frees the
  // module with its context.
}

void PtxKernel::loadInContext() {
  const Driver &d = Driver::get();
  int dev = 0, major = 0, minor = 0;
  if (d.ctxGetDevice(&dev) == 0 &&
      d.deviceGetAttribute(&major, kAttrCcMajor, dev) == 0 &&
      d.deviceGetAttribute(&minor, kAttrCcMinor, dev) == 0 &&
      major * 10 + minor < launch_.computeCapability)
    throw std::runtime_error(
        where_ + ": needs a GPU of compute capability " +
        computeCapabilityString(launch_.computeCapability) +
        " or newer (tensor cores with bf16 mma.sync); CUDA device " +
        std::to_string(dev) + " is " +
        computeCapabilityString(major * 10 + minor));
  // Into locals first: the kernel is usable only when every step worked
  // (a retry after a failure starts over and fails the same way).
  void *module = nullptr;
  if (int rc = d.moduleLoadData(&module, ptx_); rc != 0)
    throw std::runtime_error(where_ + ": cuModuleLoadData (driver JIT of the "
                             "PTX) failed: " + d.error(rc));
  std::string error;
  std::vector<void *> functions;
  for (const std::string &entry : entries_) {
    std::string name = launch_.function + entry;
    void *function = nullptr;
    if (int rc = d.moduleGetFunction(&function, module, name.c_str()); rc != 0)
      error = where_ + ": no function '" + name + "' in its PTX: " + d.error(rc);
    else if (int rc = d.funcSetAttribute(function, kAttrMaxDynamicShared,
                                         int(launch_.sharedBytes));
             rc != 0)
      error = where_ + ": " + std::to_string(launch_.sharedBytes) +
              " bytes of shared memory per block are more than this GPU "
              "allows: " + d.error(rc);
    if (!error.empty())
      break;
    functions.push_back(function);
  }
  if (!error.empty()) {
    if (d.moduleUnload)
      d.moduleUnload(module);
    throw std::runtime_error(error);
  }
  module_ = module;
  functions_ = std::move(functions);
}

void PtxKernel::packStridedInputs(
    const std::vector<std::pair<size_t, PtxPackPlan>> &packs,
    std::vector<uint64_t> &ptrs) {
  if (packs.empty())
    return;
  // Each view gets room for the whole cache (its pitch, not the view's
  // width): the view grows by a row per decode step, and regrowing would
  // free the buffer (cuMemFree waits for the device) at every step.
  auto room = [](const PtxPackPlan &p) {
    return (p.srcPitchBytes * p.height + 255) / 256 * 256;
  };
  uint64_t bytes = 0;
  for (const auto &[i, p] : packs)
    bytes += room(p);
  const Driver &d = Driver::get();
  if (!d.memAlloc || !d.memFree || !d.memcpy2DAsync)
    throw std::runtime_error(where_ + ": the CUDA driver lacks cuMemcpy2DAsync "
                             "(needed to pack a KV-cache view)");
  ContextScope scope(halide_, d, where_);
  PtxPackScratch &pack = *pack_;
  if (bytes > pack.bytes) {
    // cuMemFree waits for the device, so the previous call's kernels are
    // done with the old buffer.
    if (pack.ptr)
      d.memFree(pack.ptr);
    pack.ptr = pack.bytes = 0;
    if (int rc = d.memAlloc(&pack.ptr, bytes); rc != 0)
      throw std::runtime_error(where_ + ": cannot allocate " + std::to_string(bytes) +
                               " bytes to pack the KV-cache views: " + d.error(rc));
    pack.bytes = bytes;
  }
  uint64_t at = pack.ptr;
  for (const auto &[i, p] : packs) {
    // Stream 0, as every launch: the kernels that read it follow in order.
    if (p.widthBytes * p.height > 0)
      copy2D(d, where_ + " (packing a KV-cache view)", at, p.widthBytes, ptrs[i],
             p.srcPitchBytes, p.widthBytes, p.height);
    ptrs[i] = at;
    at += room(p);
  }
}

template <typename Plan> void PtxKernel::launchSteps(Plan plan) {
  const Driver &d = Driver::get();
  ContextScope scope(halide_, d, where_);
  // One plan at a time per kernel: the steps share the scratch (the
  // launches are ordered on stream 0; cuMemFree waits for the device).
  std::lock_guard<std::mutex> lock(mutex_);
  if (functions_.empty())
    loadInContext();
  PtxSelectPlan steps = plan(0);
  if (steps.scratchBytes > scratchBytes_) {
    if (scratch_)
      d.memFree(scratch_);
    scratch_ = scratchBytes_ = 0;
    if (int rc = d.memAlloc(&scratch_, steps.scratchBytes); rc != 0)
      throw std::runtime_error(where_ + ": cannot allocate " +
                               std::to_string(steps.scratchBytes) +
                               " bytes of scratch: " + d.error(rc));
    scratchBytes_ = steps.scratchBytes;
  }
  steps = plan(scratch_);
  for (size_t s = 0; s < steps.steps.size(); ++s) {
    size_t f = size_t(std::find(entries_.begin(), entries_.end(), steps.entries[s]) -
                      entries_.begin());
    if (f >= functions_.size())
      throw std::runtime_error(where_ + ": no entry '" + steps.entries[s] + "'");
    PtxLaunchPlan &lp = steps.steps[s];
    std::vector<void *> args;
    for (uint64_t &p : lp.params)
      args.push_back(&p);
    if (int rc = d.launchKernel(functions_[f], lp.grid[0], lp.grid[1], lp.grid[2],
                                lp.threads, 1, 1, lp.sharedBytes, nullptr,
                                args.data(), nullptr);
        rc != 0)
      throw std::runtime_error(where_ + ": cuLaunchKernel (" + steps.entries[s] +
                               "): " + d.error(rc));
  }
}

void PtxKernel::launch(const manifest::KernelSpec &kernel,
                       std::vector<Tensor> &tensors, int64_t promptRowsAfter) {
  const bool select = kernel.kind == manifest::KernelKind::Select;
  const bool decode = launch_.abi == "decode-v1";
  const bool rows = launch_.abi == "dense-rows-v1";
  const bool delta = launch_.abi == "delta-correct-v1";
  const bool gemm = launch_.abi == "gemm-v1" || launch_.abi == "gemv-v2";
  const bool steps = select || decode || rows || delta || gemm;
  // Everything about the tensors is checked before the driver is touched
  // and before anything moves to the device.
  size_t inputs = kernel.inputs.size();
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::pair<size_t, PtxPackPlan>> packs; // strided inputs
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string &name =
        i < inputs ? kernel.inputs[i] : kernel.outputs.at(i - inputs);
    // The kernel addresses rows as [B, H, N, D] with no gaps: an input view
    // with gaps between its heads (a KV-cache view) is packed first.
    if (!tensors[i].dense()) {
      if (i >= inputs)
        throw std::runtime_error(where_ + ": output '" + name +
                                 "' is a strided view; the tensor-core kernel "
                                 "writes dense tensors only");
      try {
        packs.emplace_back(i, planPack(tensors[i]));
      } catch (const std::exception &e) {
        throw std::runtime_error(where_ + ": '" + name + "' is " + e.what());
      }
    }
    shapes.push_back(tensors[i].shape());
  }
  // The launches of a multi-step ABI, with the scratch at `scratch`.
  auto stepsPlan = [&](const std::vector<uint64_t> &ptrs, uint64_t scratch) {
    if (select)
      return planSelectLaunch(launch_, kernel.select, shapes, ptrs, scratch);
    if (decode)
      return planDecodeLaunch(launch_, kernel.attention, shapes, ptrs, scratch);
    if (rows)
      return planDenseRowsLaunch(launch_, kernel.attention, kernel.stride, shapes,
                                 ptrs, scratch, promptRowsAfter);
    if (gemm)
      return planGemmLaunch(launch_, shapes, ptrs);
    return planDeltaCorrectLaunch(launch_, kernel.stride, shapes, ptrs,
                                  promptRowsAfter);
  };
  try {
    std::vector<uint64_t> none(shapes.size(), 0);
    if (steps)
      stepsPlan(none, 0);
    else
      planAttentionLaunch(launch_, kernel.attention, shapes, none, &kernel.sparse);
  } catch (const std::exception &e) {
    throw std::runtime_error(where_ + ": " + e.what());
  }
  const Driver &d = Driver::get();
  if (!d.complete() || (steps && (!d.memAlloc || !d.memFree)))
    throw std::runtime_error(where_ + ": the CUDA driver (libcuda.so.1) is "
                             "missing or lacks the launch API");
  auto *iface = static_cast<const halide_device_interface_t *>(halide_.deviceInterface());
  std::vector<uint64_t> ptrs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    halide_buffer_t *buf = tensors[i].halideBuffer();
    int rc = i < inputs ? halide_.copyToDevice(nullptr, buf, iface)
                        : halide_.deviceMalloc(nullptr, buf, iface);
    if (rc != 0)
      throw std::runtime_error(
          where_ + ": cannot place " +
          (i < inputs ? kernel.inputs[i] : kernel.outputs[i - inputs]) +
          " on the device: " + Module::takeHalideError());
    ptrs.push_back(buf->device);
  }
  std::lock_guard<std::mutex> packLock(pack_->mutex);
  packStridedInputs(packs, ptrs);
  if (steps) {
    try {
      launchSteps([&](uint64_t scratch) { return stepsPlan(ptrs, scratch); });
    } catch (const std::exception &e) {
      std::string what = e.what();
      throw std::runtime_error(what.rfind(where_, 0) == 0 ? what : where_ + ": " + what);
    }
    for (size_t i = inputs; i < tensors.size(); ++i)
      tensors[i].halideBuffer()->flags |= halide_buffer_flag_device_dirty;
    return;
  }
  PtxLaunchPlan plan;
  try {
    plan = planAttentionLaunch(launch_, kernel.attention, shapes, ptrs,
                               &kernel.sparse);
  } catch (const std::exception &e) {
    throw std::runtime_error(where_ + ": " + e.what());
  }
  if (plan.grid[0] > 0 && plan.grid[2] > 0) { // no rows or no batch: nothing to run
    ContextScope scope(halide_, d, where_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (functions_.empty())
        loadInContext();
    }
    std::vector<void *> args;
    for (uint64_t &p : plan.params)
      args.push_back(&p);
    // Stream 0, as the module's Halide kernels: launches are ordered.
    if (int rc = d.launchKernel(functions_[0], plan.grid[0], plan.grid[1],
                                plan.grid[2], plan.threads, 1, 1,
                                plan.sharedBytes, nullptr, args.data(), nullptr);
        rc != 0)
      throw std::runtime_error(where_ + ": cuLaunchKernel: " + d.error(rc));
  }
  for (size_t i = inputs; i < tensors.size(); ++i)
    tensors[i].halideBuffer()->flags |= halide_buffer_flag_device_dirty;
}

} // namespace deltaflow::rt
