//===- Manifest.cpp - the manifest's JSON in both directions --------------===//

#include "deltaflow/Common/Manifest.h"

#include <nlohmann/json.hpp>

#include <iterator>
#include <tuple>

namespace deltaflow::manifest {

namespace {
template <typename E, size_t N>
const char *nameOf(const char *const (&names)[N], E e) {
  return names[size_t(e)];
}
template <typename E, size_t N>
std::optional<E> parseName(const char *const (&names)[N], const std::string &s) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i])
      return E(i);
  return std::nullopt;
}
const char *const kDTypeNames[] = {"float32", "float16", "int32", "bfloat16"};
const char *const kRoleNames[] = {"input",     "weight",   "tokens",
                                  "positions", "last_row", "kv_cache"};
const char *const kKindNames[] = {"attention",  "select",        "sparse_attention",
                                  "dense_rows", "delta_correct", "graph",
                                  "cache_write"};
} // namespace

const char *toString(DType t) { return nameOf(kDTypeNames, t); }
std::optional<DType> parseDType(const std::string &s) {
  return parseName<DType>(kDTypeNames, s);
}
size_t byteSize(DType t) {
  return t == DType::Float16 || t == DType::BFloat16 ? 2 : 4;
}
const char *toString(Role r) { return nameOf(kRoleNames, r); }
std::optional<Role> parseRole(const std::string &s) {
  return parseName<Role>(kRoleNames, s);
}
const char *toString(KernelKind k) { return nameOf(kKindNames, k); }
std::optional<KernelKind> parseKernelKind(const std::string &s) {
  return parseName<KernelKind>(kKindNames, s);
}

const ArgLayout &kernelArgs(KernelKind k) {
  // Indexed by KernelKind: attention, select, sparse_attention, dense_rows,
  // delta_correct, graph (no fixed layout), cache_write.
  static const ArgLayout layouts[] = {
      {{Arg::Query, Arg::Key, Arg::Value}, {Arg::Out, Arg::Lse}},
      {{Arg::Query, Arg::Key}, {Arg::Indices}},
      {{Arg::Query, Arg::Key, Arg::Value, Arg::Indices}, {Arg::Out, Arg::Lse}},
      {{Arg::Query, Arg::Key, Arg::Value}, {Arg::Rows}},
      {{Arg::Sparse, Arg::Rows}, {Arg::Out}},
      {},
      {{Arg::NewRows}, {Arg::Cache}},
  };
  static_assert(std::size(layouts) == std::size(kKindNames),
                "one argument layout per kernel kind");
  return layouts[size_t(k)];
}

// --- Dimensions and tensors ------------------------------------------------

Dim Dim::fixed(int64_t n) {
  Dim d;
  d.size = n;
  return d;
}
Dim Dim::of(const std::string &input, int dimension) {
  Dim d;
  d.like = input;
  d.dim = dimension;
  return d;
}
namespace {
/// ceil(n / div) + add for n >= 0, div >= 1 and add >= 0, without overflow;
/// nullopt when an argument is out of range or the result exceeds int64.
std::optional<int64_t> ceilDivAdd(int64_t n, int64_t div, int64_t add) {
  if (n < 0 || div < 1 || add < 0)
    return std::nullopt;
  int64_t r = 0;
  if (__builtin_add_overflow(n / div + (n % div != 0), add, &r))
    return std::nullopt;
  return r;
}
} // namespace

int64_t Dim::resolve(int64_t n) const {
  if (size >= 0)
    return size;
  // A manifest's div and add are only bounded below (fromJson): a huge one
  // is an error here, not an overflow.
  std::optional<int64_t> r = ceilDivAdd(n, div, add);
  if (!r)
    throw ManifestError("dimension ceil(" + std::to_string(n) + " / " +
                        std::to_string(div) + ") + " + std::to_string(add) +
                        " is out of range");
  return *r;
}
std::optional<Dim> Dim::derive(int64_t by, int64_t plus) const {
  Dim d = *this;
  if (d.size >= 0) {
    std::optional<int64_t> r = ceilDivAdd(d.size, by, plus);
    if (!r)
      return std::nullopt;
    d.size = *r;
    return d;
  }
  if (d.div != 1 || d.add != 0)
    return std::nullopt;
  d.div = by;
  d.add = plus;
  return d;
}
bool Dim::operator==(const Dim &o) const {
  return std::tie(size, like, dim, div, add) ==
         std::tie(o.size, o.like, o.dim, o.div, o.add);
}

std::string TensorSpec::shapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (shape[i].size >= 0 ? std::to_string(shape[i].size)
                                                : std::string("?"));
  return s + "]";
}
bool TensorSpec::operator==(const TensorSpec &o) const {
  return std::tie(name, dtype, shape, role) ==
         std::tie(o.name, o.dtype, o.shape, o.role);
}

std::vector<int64_t>
resolveShape(const TensorSpec &t,
             const std::map<std::string, std::vector<int64_t>> &inputShapes) {
  std::vector<int64_t> shape;
  for (const Dim &d : t.shape) {
    if (d.isStatic()) {
      shape.push_back(d.size);
      continue;
    }
    auto it = inputShapes.find(d.like);
    if (it == inputShapes.end() || d.dim < 0 || d.dim >= int(it->second.size()))
      throw ManifestError("manifest: '" + t.name +
                          "' has a dimension taken from unknown '" + d.like +
                          "'");
    try {
      shape.push_back(d.resolve(it->second[size_t(d.dim)]));
    } catch (const ManifestError &e) {
      throw ManifestError("manifest: '" + t.name + "': " + e.what() +
                          " (from dimension " + std::to_string(d.dim) +
                          " of '" + d.like + "')");
    }
  }
  return shape;
}

size_t bytesAt(const TensorSpec &t, int64_t n) {
  size_t b = byteSize(t.dtype);
  for (const Dim &d : t.shape)
    b *= size_t(d.resolve(n));
  return b;
}

// --- Kernels, entries, modules ---------------------------------------------

bool AttentionParams::operator==(const AttentionParams &o) const {
  return std::tie(hq, hkv, d, dv, scale, causal, offset, withLse, kvDtype,
                  dtype) ==
         std::tie(o.hq, o.hkv, o.d, o.dv, o.scale, o.causal, o.offset,
                  o.withLse, o.kvDtype, o.dtype);
}
bool SelectParams::operator==(const SelectParams &o) const {
  return std::tie(policy, slots, sinks, window, chunk, perKvHead, knobs,
                  offset, kDtype) ==
         std::tie(o.policy, o.slots, o.sinks, o.window, o.chunk, o.perKvHead,
                  o.knobs, o.offset, o.kDtype);
}

int KernelSpec::argIndex(Arg a) const {
  const ArgLayout &l = kernelArgs(kind);
  for (size_t i = 0; i < l.inputs.size(); ++i)
    if (l.inputs[i] == a)
      return i < inputs.size() ? int(i) : -1;
  for (size_t i = 0; i < l.outputs.size(); ++i)
    if (l.outputs[i] == a)
      return i < outputs.size() ? int(inputs.size() + i) : -1;
  return -1;
}
const std::string &KernelSpec::buffer(Arg a) const {
  int i = argIndex(a);
  if (i < 0)
    throw ManifestError("kernel '" + name + "' (" + toString(kind) +
                        ") has no argument " + std::to_string(int(a)));
  return size_t(i) < inputs.size() ? inputs[size_t(i)]
                                   : outputs[size_t(i) - inputs.size()];
}
bool KernelSpec::operator==(const KernelSpec &o) const {
  return std::tie(name, kind, loc, inputs, outputs, attention, sparse, select,
                  stride, ops, variants, rows, promptRowsAfter, denseFallback,
                  deps) == std::tie(o.name, o.kind, o.loc, o.inputs, o.outputs,
                                    o.attention, o.sparse, o.select, o.stride,
                                    o.ops, o.variants, o.rows,
                                    o.promptRowsAfter, o.denseFallback, o.deps);
}

const TensorSpec *EntrySpec::findInput(const std::string &n) const {
  for (const TensorSpec &t : inputs)
    if (t.name == n)
      return &t;
  return nullptr;
}
const TensorSpec *EntrySpec::findOutput(const std::string &n) const {
  for (const TensorSpec &t : outputs)
    if (t.name == n)
      return &t;
  return nullptr;
}
bool EntrySpec::operator==(const EntrySpec &o) const {
  return std::tie(name, inputs, outputs, temporaries, kernels, valueBuffers) ==
         std::tie(o.name, o.inputs, o.outputs, o.temporaries, o.kernels,
                  o.valueBuffers);
}
bool ModuleSpec::operator==(const ModuleSpec &o) const {
  return std::tie(target, halideTarget, gpu, library, entries) ==
         std::tie(o.target, o.halideTarget, o.gpu, o.library, o.entries);
}

// --- Writing ----------------------------------------------------------------

namespace {
using ojson = nlohmann::ordered_json;

ojson dimJson(const Dim &d) {
  if (d.size >= 0)
    return d.size;
  if (d.like.empty())
    return -1;
  ojson j = {{"like", d.like}, {"dim", d.dim}};
  if (d.div != 1 || d.add != 0) {
    j["div"] = d.div;
    j["add"] = d.add;
  }
  return j;
}

ojson tensorJson(const TensorSpec &t) {
  ojson shape = ojson::array();
  for (const Dim &d : t.shape)
    shape.push_back(dimJson(d));
  ojson j = {{"name", t.name}, {"dtype", toString(t.dtype)}, {"shape", shape}};
  if (t.role)
    j["role"] = toString(*t.role);
  return j;
}

ojson variantsJson(const std::vector<Variant> &vs) {
  ojson a = ojson::array();
  for (const Variant &v : vs) {
    ojson j = {{"symbol", v.symbol}};
    if (v.maxRows >= 0)
      j["max_rows"] = v.maxRows;
    if (v.ptx)
      j["ptx"] = {{"function", v.ptx->function},
                  {"threads", v.ptx->threads},
                  {"shared_bytes", v.ptx->sharedBytes},
                  {"rows_per_block", v.ptx->rowsPerBlock},
                  {"compute_capability", v.ptx->computeCapability}};
    if (v.ptx && !v.ptx->abi.empty())
      j["ptx"]["abi"] = v.ptx->abi;
    a.push_back(j);
  }
  return a;
}

ojson attentionJson(const AttentionParams &a) {
  ojson j = {{"hq", a.hq},       {"hkv", a.hkv},       {"d", a.d},
             {"dv", a.dv},       {"scale", a.scale},   {"causal", a.causal},
             {"lse", a.withLse}};
  if (a.offset)
    j["offset"] = *a.offset;
  j["kv_dtype"] = toString(a.kvDtype);
  if (a.dtype != DType::Float32)
    j["dtype"] = toString(a.dtype);
  return j;
}

ojson paramsJson(const KernelSpec &k) {
  switch (k.kind) {
  case KernelKind::Attention:
    return attentionJson(k.attention);
  case KernelKind::SparseAttention: {
    ojson j = attentionJson(k.attention);
    j["sinks"] = k.sparse.sinks;
    j["window"] = k.sparse.window;
    j["chunk"] = k.sparse.chunk;
    j["slots"] = k.sparse.slots;
    return j;
  }
  case KernelKind::DenseRows: {
    ojson j = attentionJson(k.attention);
    j["stride"] = k.stride;
    return j;
  }
  case KernelKind::Select: {
    const SelectParams &s = k.select;
    ojson knobs = ojson::object();
    for (const auto &[n, v] : s.knobs)
      knobs[n] = v;
    ojson j = {{"policy", s.policy}, {"slots", s.slots},
               {"sinks", s.sinks},   {"window", s.window},
               {"chunk", s.chunk},   {"per_kv_head", s.perKvHead},
               {"knobs", knobs},     {"k_dtype", toString(s.kDtype)}};
    if (s.offset)
      j["offset"] = *s.offset;
    return j;
  }
  case KernelKind::DeltaCorrect:
    return {{"stride", k.stride}};
  case KernelKind::Graph:
    return {{"ops", k.ops}};
  case KernelKind::CacheWrite:
    break;
  }
  return ojson::object();
}

ojson kernelJson(const KernelSpec &k) {
  ojson j = {{"name", k.name},       {"kind", toString(k.kind)},
             {"loc", k.loc},         {"inputs", k.inputs},
             {"outputs", k.outputs}, {"params", paramsJson(k)},
             {"variants", variantsJson(k.variants)}};
  if (k.rows)
    j["rows"] = {{"buffer", k.rows->buffer}, {"dim", k.rows->dim}};
  if (k.promptRowsAfter)
    j["prompt_rows_after"] = true;
  if (k.denseFallback)
    j["dense_fallback"] = {{"max_keys", k.denseFallback->maxKeys},
                           {"variants", variantsJson(k.denseFallback->variants)}};
  j["deps"] = k.deps;
  return j;
}
} // namespace

std::string toJson(const ModuleSpec &m) {
  ojson entries = ojson::array();
  for (const EntrySpec &e : m.entries) {
    ojson ej = {{"name", e.name}};
    auto list = [](const std::vector<TensorSpec> &ts) {
      ojson a = ojson::array();
      for (const TensorSpec &t : ts)
        a.push_back(tensorJson(t));
      return a;
    };
    ej["inputs"] = list(e.inputs);
    ej["outputs"] = list(e.outputs);
    ej["temporaries"] = list(e.temporaries);
    ej["kernels"] = ojson::array();
    for (const KernelSpec &k : e.kernels)
      ej["kernels"].push_back(kernelJson(k));
    ej["value_buffers"] = list(e.valueBuffers);
    entries.push_back(ej);
  }
  ojson j = {{"format", "deltaflow-module"},
             {"version", 1},
             {"target", m.target},
             {"halide_target", m.halideTarget},
             {"gpu", m.gpu},
             {"library", m.library},
             {"entries", entries}};
  return j.dump(2) + "\n";
}

// --- Reading ----------------------------------------------------------------

namespace {
using json = nlohmann::json;

[[noreturn]] void fail(const std::string &where, const std::string &what) {
  throw ManifestError(where + ": " + what);
}

template <typename T>
T field(const json &j, const char *key, const std::string &where) {
  if (!j.is_object() || !j.contains(key))
    fail(where, std::string("missing field '") + key + "'");
  const json &v = j.at(key);
  // nlohmann converts between numbers and booleans silently: not here.
  bool ok = true;
  if constexpr (std::is_same_v<T, bool>)
    ok = v.is_boolean();
  else if constexpr (std::is_integral_v<T>)
    ok = v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>)
    ok = v.is_number();
  if constexpr (std::is_same_v<T, std::vector<size_t>>)
    for (const json &e : v)
      ok = ok && e.is_number_unsigned();
  if (ok)
    try {
      return v.get<T>();
    } catch (const json::exception &) {
    }
  fail(where, std::string("field '") + key + "' has the wrong type");
}

template <typename T>
std::optional<T> optionalField(const json &j, const char *key,
                               const std::string &where) {
  if (!j.is_object() || !j.contains(key))
    return std::nullopt;
  return field<T>(j, key, where);
}

const json &arrayField(const json &j, const char *key, const std::string &where) {
  if (!j.is_object() || !j.contains(key))
    fail(where, std::string("missing field '") + key + "'");
  if (!j.at(key).is_array())
    fail(where, std::string("field '") + key + "' is not a list");
  return j.at(key);
}

DType dtypeField(const json &j, const char *key, const std::string &where) {
  std::string s = field<std::string>(j, key, where);
  auto t = parseDType(s);
  if (!t)
    fail(where, "unsupported dtype '" + s + "'");
  return *t;
}

TensorSpec parseTensor(const json &j, const std::string &where) {
  TensorSpec t;
  t.name = field<std::string>(j, "name", where);
  std::string w = where + " tensor '" + t.name + "'";
  t.dtype = dtypeField(j, "dtype", w);
  for (const json &d : arrayField(j, "shape", w)) {
    Dim ds;
    if (d.is_number_integer()) {
      ds.size = d.get<int64_t>();
      if (ds.size < -1 ||
          (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX)))
        fail(w, "bad shape entry " + d.dump());
    } else if (d.is_object()) {
      ds.like = field<std::string>(d, "like", w);
      ds.dim = field<int>(d, "dim", w);
      if (d.contains("div")) {
        ds.div = field<int64_t>(d, "div", w);
        ds.add = field<int64_t>(d, "add", w);
        if (ds.div < 1 || ds.add < 0)
          fail(w, "bad derived dimension " + d.dump());
      }
    } else
      fail(w, "bad shape entry " + d.dump());
    t.shape.push_back(ds);
  }
  if (auto r = optionalField<std::string>(j, "role", w)) {
    t.role = parseRole(*r);
    if (!t.role)
      fail(w, "unknown role '" + *r + "'");
  }
  return t;
}

std::vector<Variant> parseVariants(const json &list, const std::string &where) {
  if (!list.is_array())
    fail(where, "variants are not a list");
  std::vector<Variant> out;
  for (const json &vj : list) {
    Variant v;
    v.symbol = field<std::string>(vj, "symbol", where);
    v.maxRows = optionalField<int64_t>(vj, "max_rows", where).value_or(-1);
    // Absent means any number of rows; a written bound is a row count.
    if (vj.contains("max_rows") && v.maxRows < 0)
      fail(where + " variant '" + v.symbol + "'",
           "max_rows " + std::to_string(v.maxRows) + " is negative");
    if (vj.contains("ptx")) {
      const json &pj = vj.at("ptx");
      std::string pw = where + " variant '" + v.symbol + "' ptx";
      PtxLaunch l;
      l.function = field<std::string>(pj, "function", pw);
      // Range-checked as int64 before narrowing.
      int64_t threads = field<int64_t>(pj, "threads", pw);
      int64_t cc = field<int64_t>(pj, "compute_capability", pw);
      l.sharedBytes = field<int64_t>(pj, "shared_bytes", pw);
      l.rowsPerBlock = field<int64_t>(pj, "rows_per_block", pw);
      if (threads < 1 || threads > 1024 || l.sharedBytes < 0 ||
          l.sharedBytes > (int64_t(1) << 20) || l.rowsPerBlock < 1 ||
          l.rowsPerBlock > (int64_t(1) << 20) || cc < 10 || cc > 1000)
        fail(pw, "launch shape out of range");
      l.threads = int(threads);
      l.computeCapability = int(cc);
      l.abi = optionalField<std::string>(pj, "abi", pw).value_or("");
      if (!l.abi.empty() && l.abi != "decode-v1" && l.abi != "dense-rows-v1" &&
          l.abi != "delta-correct-v1" && l.abi != "gemm-v1" && l.abi != "gemv-v2" &&
          l.abi != "token-select-v2" &&
          l.abi != "token-select-v3" && l.abi != "token-select-v4")
        fail(pw, "unknown launch ABI '" + l.abi +
                     "' (this runtime knows decode-v1, dense-rows-v1, "
                     "delta-correct-v1, gemm-v1, gemv-v2 and token-select-v2 to -v4)");
      v.ptx = l;
    }
    out.push_back(v);
  }
  return out;
}

AttentionParams parseAttention(const json &p, const std::string &w) {
  AttentionParams a;
  a.hq = field<int64_t>(p, "hq", w);
  a.hkv = field<int64_t>(p, "hkv", w);
  a.d = field<int64_t>(p, "d", w);
  a.dv = field<int64_t>(p, "dv", w);
  a.scale = field<double>(p, "scale", w);
  a.causal = field<bool>(p, "causal", w);
  a.withLse = field<bool>(p, "lse", w);
  a.offset = optionalField<int64_t>(p, "offset", w);
  a.kvDtype = dtypeField(p, "kv_dtype", w);
  if (p.contains("dtype"))
    a.dtype = dtypeField(p, "dtype", w);
  return a;
}

void parseParams(KernelSpec &k, const json &kj, const std::string &kw) {
  // Manifests written before the parameters were read back may lack them
  // for runtime-only kinds; every kind that has parameters writes them.
  if (k.kind == KernelKind::CacheWrite && !kj.contains("params"))
    return;
  if (!kj.contains("params") || !kj.at("params").is_object())
    fail(kw, "missing field 'params'");
  const json &p = kj.at("params");
  std::string w = kw + " params";
  switch (k.kind) {
  case KernelKind::Attention:
    k.attention = parseAttention(p, w);
    break;
  case KernelKind::SparseAttention:
    k.attention = parseAttention(p, w);
    k.sparse.sinks = field<int64_t>(p, "sinks", w);
    k.sparse.window = field<int64_t>(p, "window", w);
    k.sparse.chunk = field<int64_t>(p, "chunk", w);
    k.sparse.slots = field<int64_t>(p, "slots", w);
    break;
  case KernelKind::DenseRows:
    k.attention = parseAttention(p, w);
    k.stride = field<int64_t>(p, "stride", w);
    break;
  case KernelKind::Select: {
    SelectParams &s = k.select;
    s.policy = field<std::string>(p, "policy", w);
    s.slots = field<int64_t>(p, "slots", w);
    s.sinks = field<int64_t>(p, "sinks", w);
    s.window = field<int64_t>(p, "window", w);
    s.chunk = field<int64_t>(p, "chunk", w);
    s.perKvHead = field<bool>(p, "per_kv_head", w);
    const json &knobs = p.contains("knobs") ? p.at("knobs") : json::object();
    if (!knobs.is_object())
      fail(w, "field 'knobs' is not an object");
    for (auto it = knobs.begin(); it != knobs.end(); ++it) {
      if (!it.value().is_number())
        fail(w, "knob '" + it.key() + "' is not a number");
      s.knobs[it.key()] = it.value().get<double>();
    }
    s.kDtype = dtypeField(p, "k_dtype", w);
    s.offset = optionalField<int64_t>(p, "offset", w);
    break;
  }
  case KernelKind::DeltaCorrect:
    k.stride = field<int64_t>(p, "stride", w);
    break;
  case KernelKind::Graph:
    k.ops = field<std::string>(p, "ops", w);
    break;
  case KernelKind::CacheWrite:
    break;
  }
}

KernelSpec parseKernel(const json &kj, const std::string &where,
                       size_t index) {
  KernelSpec k;
  k.name = field<std::string>(kj, "name", where);
  std::string kw = where + " kernel '" + k.name + "'";
  std::string kind = field<std::string>(kj, "kind", kw);
  auto kk = parseKernelKind(kind);
  if (!kk)
    fail(kw, "unknown kernel kind '" + kind + "'");
  k.kind = *kk;
  k.loc = field<std::string>(kj, "loc", kw);
  k.inputs = field<std::vector<std::string>>(kj, "inputs", kw);
  k.outputs = field<std::vector<std::string>>(kj, "outputs", kw);
  parseParams(k, kj, kw);
  if (kj.contains("deps"))
    for (size_t d : field<std::vector<size_t>>(kj, "deps", kw)) {
      if (d >= index)
        fail(kw, "depends on kernel " + std::to_string(d) +
                     ", which does not precede it");
      k.deps.push_back(d);
    }
  if (kj.contains("rows")) {
    const json &rj = kj.at("rows");
    k.rows = RowsSelector{field<std::string>(rj, "buffer", kw),
                          field<int>(rj, "dim", kw)};
    bool own = false;
    for (const auto *list : {&k.inputs, &k.outputs})
      for (const std::string &b : *list)
        own |= b == k.rows->buffer;
    if (!own || k.rows->dim < 0)
      fail(kw, "rows must name one of the kernel's buffers and a dimension "
               ">= 0, got '" + k.rows->buffer + "' dim " +
                   std::to_string(k.rows->dim));
  }
  if (k.kind == KernelKind::CacheWrite) {
    if (k.inputs.size() != 1 || k.outputs.size() != 1)
      fail(kw, "cache_write needs one input and one output");
    if (kj.contains("variants"))
      k.variants = parseVariants(kj.at("variants"), kw);
    return k;
  }
  k.promptRowsAfter =
      optionalField<bool>(kj, "prompt_rows_after", kw).value_or(false);
  if (!kj.contains("variants"))
    fail(kw, "missing field 'variants'");
  k.variants = parseVariants(kj.at("variants"), kw);
  if (kj.contains("dense_fallback")) {
    const json &fj = kj.at("dense_fallback");
    if (k.kind != KernelKind::SparseAttention || k.inputs.size() < 3)
      fail(kw, "only sparse_attention kernels have a dense fallback");
    DenseFallback f;
    f.maxKeys = field<int64_t>(fj, "max_keys", kw);
    if (!fj.contains("variants"))
      fail(kw, "dense_fallback has no variants");
    f.variants = parseVariants(fj.at("variants"), kw);
    if (f.variants.empty())
      fail(kw, "dense_fallback has no variants");
    k.denseFallback = f;
  }
  if (k.variants.empty())
    fail(kw, "no variants");
  return k;
}
} // namespace

ModuleSpec fromJson(const std::string &text, const std::string &where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error &e) {
    fail(where, std::string("malformed JSON: ") + e.what());
  }
  if (field<std::string>(j, "format", where) != "deltaflow-module")
    fail(where, "not a deltaflow module manifest");
  if (field<int>(j, "version", where) != 1)
    fail(where, "unsupported manifest version");
  ModuleSpec m;
  m.target = field<std::string>(j, "target", where);
  m.halideTarget = optionalField<std::string>(j, "halide_target", where).value_or("");
  m.gpu = optionalField<bool>(j, "gpu", where).value_or(false);
  m.library = optionalField<std::string>(j, "library", where).value_or("");
  for (const json &ej : arrayField(j, "entries", where)) {
    EntrySpec e;
    e.name = field<std::string>(ej, "name", where);
    std::string w = where + ": entry '" + e.name + "'";
    for (const json &t : arrayField(ej, "inputs", w))
      e.inputs.push_back(parseTensor(t, w));
    for (const json &t : arrayField(ej, "outputs", w))
      e.outputs.push_back(parseTensor(t, w));
    for (const json &t : arrayField(ej, "temporaries", w))
      e.temporaries.push_back(parseTensor(t, w));
    if (ej.contains("value_buffers"))
      for (const json &t : arrayField(ej, "value_buffers", w))
        e.valueBuffers.push_back(parseTensor(t, w));
    for (const json &kj : arrayField(ej, "kernels", w))
      e.kernels.push_back(parseKernel(kj, w, e.kernels.size()));
    m.entries.push_back(std::move(e));
  }
  return m;
}

} // namespace deltaflow::manifest
