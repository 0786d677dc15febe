//===- Manifest.h - the compiler/runtime contract: OUT.manifest.json -*- C++ -*-===//
//
// The one definition of a compiled module's manifest, shared by the
// compiler (which writes it next to OUT.so) and the runtime (which reads
// it). Plain C++17: no MLIR, Halide or TBB. The JSON text in both
// directions is in Manifest.cpp; `fromJson(toJson(m)) == m` for every
// manifest (test/unit/ManifestJsonTest.cpp checks it over random manifests).
//
// Layout of the JSON (format "deltaflow-module", version 1):
//   module  {format, version, target, halide_target, gpu, library, entries}
//   entry   {name, inputs, outputs, temporaries, kernels, value_buffers}
//   tensor  {name, dtype, shape, [role]}; a shape entry is a static size,
//           -1 (dynamic), or {like, dim, [div, add]}: ceil(dim / div) + add
//           of dimension `dim` of entry input `like`
//   kernel  {name, kind, loc, inputs, outputs, params, variants, [rows],
//            [prompt_rows_after], [dense_fallback], deps}
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMMON_MANIFEST_H
#define DELTAFLOW_COMMON_MANIFEST_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace deltaflow::manifest {

/// Element types of manifest tensors ("float32", "float16", "int32",
/// "bfloat16"). bfloat16 is the upper half of an IEEE float32 (Google
/// Brain's format, as torch.bfloat16).
enum class DType { Float32, Float16, Int32, BFloat16 };
const char *toString(DType t);
std::optional<DType> parseDType(const std::string &name);
size_t byteSize(DType t);

/// How a session feeds an entry input (the argument's `deltaflow.role`).
enum class Role { Input, Weight, Tokens, Positions, LastRow, KvCache };
const char *toString(Role r);
std::optional<Role> parseRole(const std::string &name);

/// What a kernel computes. Each kind's argument order is fixed by
/// `kernelArgs` below; the compiler orders operands by it and the runtime
/// finds arguments through it.
enum class KernelKind {
  Attention,       ///< attn.attention: dense prefill + decode variants
  Select,          ///< attn.select: a policy's indices
  SparseAttention, ///< attn.sparse_attention: sinks ∪ selection ∪ window
  DenseRows,       ///< attn.dense_rows: Δ's strided rows and the tail
  DeltaCorrect,    ///< attn.delta_correct: sparse output + Δ
  Graph,           ///< fused TOSA tensor math
  CacheWrite,      ///< attn.cache_write: done by the runtime, in place
};
const char *toString(KernelKind k);
std::optional<KernelKind> parseKernelKind(const std::string &name);

/// An argument of a kernel, by meaning. Inputs come first, then outputs.
enum class Arg {
  Query, Key, Value, Indices, // attention-family inputs
  Sparse, Rows,               // delta_correct inputs
  NewRows,                    // cache_write input
  Out, Lse,                   // attention-family outputs
  Cache,                      // cache_write output (the cache view)
};
/// The argument layout of a kernel kind: its inputs, then its outputs, in
/// call order. Optional trailing arguments (Indices without a selection,
/// Lse without one) may be absent. Graph kernels have no fixed layout.
struct ArgLayout {
  std::vector<Arg> inputs, outputs;
};
const ArgLayout &kernelArgs(KernelKind k);

/// A dimension: a static size, dynamic (-1, sized by what the kernel
/// writes), or derived from an entry input: ceil(dim `dim` of `like` / div)
/// + add.
struct Dim {
  int64_t size = -1;
  std::string like;
  int dim = -1;
  int64_t div = 1, add = 0;

  static Dim fixed(int64_t n);
  static Dim of(const std::string &input, int dimension);
  bool isStatic() const { return size >= 0; }
  /// The size when the source dimension has `n` elements (static: size).
  /// Throws ManifestError when n < 0 or the size exceeds int64.
  int64_t resolve(int64_t n) const;
  /// ceil(this / div) + add, or nullopt where that is not expressible
  /// (a dimension that is already divided, or a size beyond int64).
  std::optional<Dim> derive(int64_t div, int64_t add) const;
  bool operator==(const Dim &o) const;
  bool operator!=(const Dim &o) const { return !(*this == o); }
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<Dim> shape;
  /// Entry inputs carry a role; outputs and temporaries none.
  std::optional<Role> role;
  Role roleOrInput() const { return role.value_or(Role::Input); }
  /// "[1, 32, ?, 128]".
  std::string shapeString() const;
  bool operator==(const TensorSpec &o) const;
};

/// The "token-select-v4" selection's histograms, per (batch, chunk): 65536
/// bins (the top 16 bits of a vote's key), 256 (its top 8 bits), then
/// control counters; the runtime sizes its i32 scratch by kSelectHistWords.
constexpr int64_t kSelectHistBins = 65536;
constexpr int64_t kSelectHistWords = kSelectHistBins + 256 + 64;
/// Candidates per CTA of its top-k's slice kernels (grid x = ceil(Nk /
/// this)), and the most keys it takes (4096 slices).
constexpr int64_t kSelectTopKSlice = 8192;
constexpr int64_t kSelectMaxKeys = 4096 * kSelectTopKSlice;

/// A variant that is a PTX kernel launched through the CUDA driver instead
/// of a Halide pipeline. The PTX text is the NUL-terminated data symbol
/// `Variant::symbol` in the module's library; its kernel ABI is
/// compiler/include/deltaflow/Compiler/TensorCore.h's ("attention-v1").
struct PtxLaunch {
  std::string function;       ///< the .entry name inside the PTX
  int threads = 0;            ///< block size (x)
  int64_t sharedBytes = 0;    ///< dynamic shared memory per block
  int64_t rowsPerBlock = 0;   ///< query rows per block: grid x = ceil(Nq / this)
  int computeCapability = 0;  ///< needed: major * 10 + minor (80 = sm_80)
  /// How it is launched (compiler/include/deltaflow/Compiler/TensorCore.h):
  /// "attention-v1" (one entry), "token-select-v4" (seven), "decode-v1"
  /// and "dense-rows-v1" (split then merge), "delta-correct-v1" (one
  /// entry). The manifest leaves out "attention-v1", which the
  /// kernel's kind implies. (A selection without "token-select-v4" is of
  /// an older ABI, v1 (no abi field), v2 or v3, which the manifest reader
  /// accepts and the runtime refuses with "recompile".)
  std::string abi;
  bool operator==(const PtxLaunch &o) const {
    return function == o.function && threads == o.threads &&
           sharedBytes == o.sharedBytes && rowsPerBlock == o.rowsPerBlock &&
           computeCapability == o.computeCapability && abi == o.abi;
  }
};

/// One compiled function of a kernel; the runtime takes the first whose
/// maxRows admits the run's rows.
struct Variant {
  std::string symbol;
  int64_t maxRows = -1; ///< -1: any number of rows
  std::optional<PtxLaunch> ptx; ///< set: a PTX kernel (tensor cores)
  bool operator==(const Variant &o) const {
    return symbol == o.symbol && maxRows == o.maxRows && ptx == o.ptx;
  }
};

/// Static parameters of the attention family (attention, sparse_attention,
/// dense_rows; delta_correct uses dv). Sequence lengths and batch come from
/// the buffers at run time.
struct AttentionParams {
  int64_t hq = 0, hkv = 0, d = 0, dv = 0;
  double scale = 0;
  bool causal = false;
  std::optional<int64_t> offset; ///< nullopt: queries are the last Nq keys
  bool withLse = false;
  /// K and V as stored.
  DType kvDtype = DType::Float32;
  /// Q and the output as stored (bfloat16 / float16: tensor-core kernels,
  /// with float32 accumulation and LSE). float32 otherwise.
  DType dtype = DType::Float32;
  bool operator==(const AttentionParams &o) const;
};

/// The sparse pattern of attn.sparse_attention (see SparseGeometry.h).
struct SparsePattern {
  int64_t sinks = 0, window = 0, chunk = 1;
  int64_t slots = 0; ///< index slots per chunk; 0: no selection input
  bool operator==(const SparsePattern &o) const {
    return sinks == o.sinks && window == o.window && chunk == o.chunk &&
           slots == o.slots;
  }
};

/// attn.select under a named policy.
struct SelectParams {
  std::string policy;
  int64_t slots = 0, sinks = 0, window = 0, chunk = 1;
  bool perKvHead = false;
  std::map<std::string, double> knobs; ///< the policy's own parameters
  std::optional<int64_t> offset;
  DType kDtype = DType::Float32; ///< K as stored
  bool operator==(const SelectParams &o) const;
};

struct DenseFallback {
  int64_t maxKeys = -1; ///< runs when keys <= maxKeys
  std::vector<Variant> variants;
  bool operator==(const DenseFallback &o) const {
    return maxKeys == o.maxKeys && variants == o.variants;
  }
};

/// Which buffer dimension's extent picks the variant (default: query rows,
/// dimension 2 of inputs[0]).
struct RowsSelector {
  std::string buffer;
  int dim = 2;
  bool operator==(const RowsSelector &o) const {
    return buffer == o.buffer && dim == o.dim;
  }
};

struct KernelSpec {
  std::string name; ///< unique in the module; symbols derive from it
  KernelKind kind = KernelKind::Graph;
  std::string loc; ///< source location of the op, for messages
  std::vector<std::string> inputs, outputs; ///< buffer names
  // Parameters; which are written depends on `kind`.
  AttentionParams attention; ///< attention family
  SparsePattern sparse;      ///< sparse_attention
  SelectParams select;       ///< select
  int64_t stride = 0;        ///< dense_rows, delta_correct
  std::string ops;           ///< graph: the ops it computes, in order
  std::vector<Variant> variants; ///< none for cache_write
  std::optional<RowsSelector> rows;
  /// dense_rows / delta_correct: an int32 scalar follows the inputs, the
  /// number of prompt rows after this call (docs/design.md "Δ-correction").
  bool promptRowsAfter = false;
  /// sparse_attention: dense variants over (q, k, v) for contexts that fit
  /// the pattern.
  std::optional<DenseFallback> denseFallback;
  std::vector<size_t> deps; ///< earlier kernels whose outputs it reads

  /// Position of `a` among inputs then outputs, or -1 where this kernel
  /// does not have it (kernelArgs of its kind).
  int argIndex(Arg a) const;
  /// The buffer name of argument `a`; throws naming the kernel if absent.
  const std::string &buffer(Arg a) const;
  bool operator==(const KernelSpec &o) const;
};

struct EntrySpec {
  std::string name;
  std::vector<TensorSpec> inputs, outputs, temporaries;
  std::vector<KernelSpec> kernels; ///< in a valid execution order
  /// Every SSA value as one buffer (before fusion and planning): the
  /// baseline the buffer plan is measured against.
  std::vector<TensorSpec> valueBuffers;
  const TensorSpec *findInput(const std::string &n) const;
  const TensorSpec *findOutput(const std::string &n) const;
  bool operator==(const EntrySpec &o) const;
};

struct ModuleSpec {
  std::string target;       ///< deltaflow target name (host, x86-64-avx2, ...)
  std::string halideTarget; ///< Halide's target string
  bool gpu = false;
  std::string library; ///< OUT.so's file name
  std::vector<EntrySpec> entries;
  bool operator==(const ModuleSpec &o) const;
};

/// A manifest that cannot be read: the message names the file (`where`),
/// the entry, kernel or tensor, and the field.
struct ManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The manifest's JSON text (2-space indent, trailing newline).
std::string toJson(const ModuleSpec &m);
/// Parses and checks a manifest; `where` (a path) prefixes every error.
ModuleSpec fromJson(const std::string &text, const std::string &where);

/// Sizes every dimension of `t` from the entry inputs' shapes; throws
/// naming the tensor when a dimension refers to an unknown input.
std::vector<int64_t>
resolveShape(const TensorSpec &t,
             const std::map<std::string, std::vector<int64_t>> &inputShapes);
/// Bytes of `t` with every dynamic dimension equal to `n` (plans, reports).
/// Throws ManifestError where Dim::resolve does.
size_t bytesAt(const TensorSpec &t, int64_t n);

} // namespace deltaflow::manifest

#endif // DELTAFLOW_COMMON_MANIFEST_H
