//===- ModuleEmitter.cpp - kernels -> objects -> .so + header + manifest --===//
//
// Each kernel is compiled with Target::NoRuntime; one standalone Halide
// runtime object per module is linked in beside them with the host c++.
// Every output is produced in a temporary directory and renamed into place
// only when everything succeeded.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/ModuleEmitter.h"
#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Compiler/Targets.h"

#include "deltaflow/Common/SparseGeometry.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace deltaflow::compiler {

namespace {

/// Decode variant is used up to this many query rows.
constexpr int kDecodeMaxRows = 4;

class PhaseTimer {
public:
  explicit PhaseTimer(const EmitOptions &o) : opts(o) {}
  void done(const std::string &phase) {
    auto now = std::chrono::steady_clock::now();
    if (opts.onPhase)
      opts.onPhase(phase, std::chrono::duration<double>(now - last).count());
    last = now;
  }

private:
  const EmitOptions &opts;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};

/// Removes a temporary directory unless released.
struct TempDir {
  fs::path path;
  explicit TempDir(const fs::path &near) {
    std::string templ = (near.parent_path().empty() ? fs::path(".")
                                                    : near.parent_path()) /
                        ".deltaflow-compile-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
      throw std::runtime_error("cannot create a temporary directory next to '" +
                               near.string() + "'");
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string shellQuote(const std::string &s) {
  std::string r = "'";
  for (char c : s)
    r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

void runTool(const std::string &cmd, const fs::path &log) {
  std::string full = cmd + " >" + shellQuote(log.string()) + " 2>&1";
  if (std::system(full.c_str()) != 0) {
    std::ifstream in(log);
    std::string first;
    std::getline(in, first);
    throw std::runtime_error("link step failed: " + first);
  }
}

struct CompiledKernel {
  std::vector<Halide::Module> modules;
  manifest::KernelSpec manifest;
  /// PTX kernels to embed: (data symbol, PTX text).
  std::vector<std::pair<std::string, std::string>> ptx;
};

/// The symbol under which a PTX kernel's text is embedded in the library.
std::string ptxSymbol(const std::string &kernel) { return kernel + "_ptx"; }

/// An assembler file that embeds `ptxPath` as the NUL-terminated data
/// symbol `symbol` (read-only data, visible to dlsym).
std::string embedAsm(const std::string &symbol, const fs::path &ptxPath) {
  std::string path = ptxPath.string(), quoted;
  for (char c : path)
    quoted += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return "  .section .rodata\n  .globl " + symbol + "\n  .type " + symbol +
         ", @object\n  .balign 16\n" + symbol + ":\n  .incbin \"" + quoted +
         "\"\n  .byte 0\n  .size " + symbol + ", .-" + symbol +
         "\n  .section .note.GNU-stack,\"\",@progbits\n";
}

/// Builds, schedules and lowers the variants of one kernel.
CompiledKernel compileKernel(const KernelDesc &k, const Halide::Target &t) {
  const AttentionSpec &spec = k.attention;
  Halide::Target kt = t.with_feature(Halide::Target::NoRuntime);
  // Developers' switch: Halide's per-Func profiler, reported at exit.
  if (const char *p = std::getenv("DELTAFLOW_HALIDE_PROFILE"); p && *p == '1')
    kt = kt.with_feature(Halide::Target::Profile);
  CompiledKernel ck;
  ck.manifest = k.manifestSpec();
  std::vector<manifest::Variant> &variants = ck.manifest.variants;
  auto lower = [&](Halide::Pipeline pipeline,
                   const std::vector<Halide::Argument> &args,
                   const std::string &symbol) {
    ck.modules.push_back(pipeline.compile_to_module(args, symbol, kt));
  };
  auto lowerAttention = [&](const AttentionIO &io, const std::string &symbol) {
    Halide::Pipeline pipeline(io.outputs());
    addAttentionRequirements(pipeline, spec, io);
    lower(pipeline, io.arguments(), symbol);
  };

  // Dense attention (q, k, v): a decode and a prefill variant. The runtime
  // picks the first variant whose max_rows admits inputs[0].shape[2] (the
  // number of query rows).
  auto denseAttentionVariants = [&](const std::string &base) {
    std::string prefillSym = base + "_prefill", decodeSym = base + "_decode";
    PrefillPipeline prefill =
        buildPrefillAttention(spec, choosePrefillTiles(t, spec));
    schedulePrefill(prefill, spec, t);
    lowerAttention(prefill, prefillSym);
    DecodePipeline decode =
        buildDecodeAttention(spec, chooseDecodeTiles(t, spec));
    scheduleDecode(decode, spec, t);
    lowerAttention(decode, decodeSym);
    return std::vector<manifest::Variant>{{decodeSym, kDecodeMaxRows},
                                          {prefillSym, -1}};
  };

  // A graph kernel's variant (scheduling changes the Funcs: one pipeline
  // per variant), and the rows that pick among several (dim 1 of [N, H, W]).
  auto lowerGraph = [&](GraphPipeline gp, bool smallRows, const std::string &symbol) {
    scheduleGraph(gp, t, smallRows);
    std::vector<Halide::Argument> args(gp.inputs.begin(), gp.inputs.end());
    lower(Halide::Pipeline(gp.out), args, symbol);
  };
  const manifest::RowsSelector graphRows{
      k.outputs.empty() ? std::string() : k.outputs[0],
      int(k.graph.nodes.empty() ? 0 : k.graph.nodes.back().shape.size()) - 2};

  if (k.tensorCore) {
    // Tensor cores (dense or sparse attention): one PTX kernel for every
    // number of rows, and no dense fallback variant (the sparse kernel is
    // dense itself when the context fits the pattern).
    const PtxKernel &p = *k.tensorCore;
    manifest::PtxLaunch launch{p.function, p.threads, p.sharedBytes,
                               p.rowsPerBlock, p.computeCapability, p.abi};
    ck.manifest.variants.clear();
    // Δ's rows and combination take the prompt rows after this call.
    if (k.kind == KernelKind::DenseRows || k.kind == KernelKind::DeltaCorrect)
      ck.manifest.promptRowsAfter = true;
    // A matmul alone (the tensor-core GEMM, "gemm-v1", or the GEMV alone
    // where the rows are static and below kGemmMinRows: decode) picks its
    // variant by the rows of its output.
    if (k.kind == KernelKind::Graph)
      ck.manifest.rows = graphRows;
    if (k.decode) {
      // A few rows first: attention's split-K decode kernels ("decode-v1"),
      // or a GEMM's GEMV ("gemv-v2").
      const PtxKernel &d = *k.decode;
      std::string sym = ptxSymbol(d.function);
      ck.manifest.variants.push_back(
          {sym, d.maxRows,
           manifest::PtxLaunch{d.function, d.threads, d.sharedBytes, d.rowsPerBlock,
                               d.computeCapability, d.abi}});
      ck.ptx.emplace_back(sym, d.ptx);
    }
    ck.manifest.variants.push_back({ptxSymbol(k.name), -1, launch});
    ck.ptx.emplace_back(ptxSymbol(k.name), p.ptx);
    return ck;
  }
  if (k.deviceSelect) {
    // The device selection: seven PTX entries under one prefix; the launch
    // shape is the largest of them (the runtime derives each grid).
    const DeviceSelectKernels &s = *k.deviceSelect;
    // The largest dynamic shared memory of the seven (vote's q-bar and head
    // statistics, or topk's histograms).
    int64_t shared =
        std::max<int64_t>(k.select.hq * (k.select.d + 2) * 4, kSelectTopKSharedBytes);
    manifest::PtxLaunch launch{s.prefix, 1024, shared, k.select.chunk, 80,
                               "token-select-v4"};
    ck.manifest.variants = {{ptxSymbol(k.name), -1, launch}};
    ck.ptx.emplace_back(ptxSymbol(k.name), s.ptx);
    return ck;
  }
  switch (k.kind) {
  case KernelKind::Attention:
    if (spec.dtype != DType::Float32)
      throw UnsupportedShape(
          std::string("attention with a ") + manifest::toString(spec.dtype) +
          " query compiles only for --target=cuda (tensor cores); on this "
          "target write the query, key and value as f32 (or f16 K/V with an "
          "f32 query)");
    variants = denseAttentionVariants(k.name);
    break;
  case KernelKind::SparseAttention:
  case KernelKind::DenseRows: {
    if (spec.dtype != DType::Float32)
      throw UnsupportedShape(
          std::string(k.kind == KernelKind::SparseAttention
                          ? "sparse attention with a "
                          : "dense-rows attention with a ") +
          manifest::toString(spec.dtype) +
          " query compiles only for --target=cuda (tensor cores); on this "
          "target write the query, key and value as f32");
    PrefillForm form;
    if (k.kind == KernelKind::SparseAttention) {
      form.kind = PrefillForm::Sparse;
      form.sparse = k.sparse;
    } else {
      form.kind = PrefillForm::StridedRows;
      form.stride = k.stride;
    }
    PrefillTiles tiles = choosePrefillTiles(t, spec);
    // With a selection, a query tile lies within one chunk (the window
    // slides per query without one).
    if (form.kind == PrefillForm::Sparse && k.sparse.slots > 0)
      while (k.sparse.chunk % tiles.queryTile != 0)
        tiles.queryTile /= 2;
    PrefillPipeline prefill = buildPrefillAttention(spec, tiles, form);
    schedulePrefill(prefill, spec, t);
    lowerAttention(prefill, k.name);
    variants = {{k.name, -1}};
    if (form.kind == PrefillForm::Sparse && familyOf(t).sparseDecode) {
      // One query row (decode): split-K over the slots, as dense decode,
      // in equal chunks of at most the target's decode chunk (the slots'
      // count is static: sinks + selection + window + the row itself).
      DecodeTiles dt = chooseDecodeTiles(t, spec);
      int64_t slots = geometry::decodeSlots(k.sparse);
      int64_t chunks = (slots + dt.keyChunk - 1) / dt.keyChunk;
      dt.keyChunk = int((slots + chunks - 1) / chunks + 15) / 16 * 16;
      DecodePipeline decode = buildDecodeAttention(spec, dt, &k.sparse);
      scheduleDecode(decode, spec, t);
      lowerAttention(decode, k.name + "_decode");
      variants = {{k.name + "_decode", 1}, {k.name, -1}};
    }
    if (form.kind == PrefillForm::StridedRows)
      ck.manifest.promptRowsAfter = true;
    if (form.kind == PrefillForm::Sparse) {
      // Dense fallback: when the context fits sinks + slots + window, every
      // key is in the pattern and the dense kernels compute the same
      // attention (the runtime picks them by the actual key count).
      ck.manifest.denseFallback = manifest::DenseFallback{
          geometry::patternKeys(k.sparse),
          denseAttentionVariants(k.name + "_dense")};
    }
    break;
  }
  case KernelKind::Select: {
    if (k.select.qDtype != DType::Float32)
      throw UnsupportedShape(
          std::string("a selection with a ") + manifest::toString(k.select.qDtype) +
          " query compiles only for --target=cuda (policy token-select); on "
          "this target write the query as f32");
    SelectionBuild sb = buildSelection(k.select, t);
    lower(Halide::Pipeline(sb.indices), {sb.q, sb.k}, k.name);
    variants = {{k.name, -1}};
    break;
  }
  case KernelKind::DeltaCorrect: {
    if (spec.dtype != DType::Float32)
      throw UnsupportedShape(
          std::string("delta correction of a ") + manifest::toString(spec.dtype) +
          " output compiles only for --target=cuda (tensor cores)");
    DeltaPipeline delta = buildDeltaCorrect(k.stride);
    scheduleDeltaCorrect(delta, spec.dv, t);
    lower(Halide::Pipeline(delta.out),
          {delta.sparse, delta.rows, delta.promptRowsAfter}, k.name);
    ck.manifest.promptRowsAfter = true;
    variants = {{k.name, -1}};
    break;
  }
  case KernelKind::Graph: {
    // The first variant is scheduled on `probe`; a second one needs a fresh
    // algorithm (scheduling changes the Funcs).
    GraphPipeline probe = buildGraph(k.graph, k.loc);
    bool probeUsed = false;
    auto build = [&](bool smallRows, const std::string &symbol) {
      lowerGraph(probeUsed ? buildGraph(k.graph, k.loc) : probe, smallRows, symbol);
      probeUsed = true;
    };
    int limit = graphSmallRowsLimit(probe, t);
    int64_t staticRows = probe.shape.size() >= 2
                             ? probe.shape[probe.shape.size() - 2]
                             : -1;
    if (limit > 0 && staticRows >= 0) {
      // Rows known at compile time: only the variant that fits them.
      build(staticRows <= limit, k.name);
      variants = {{k.name, -1}};
    } else if (limit > 0) {
      // Matmuls: a decode-shaped variant for few rows (rows = dim 1 of the
      // [N, H, W] output).
      build(true, k.name + "_few_rows");
      build(false, k.name);
      variants = {{k.name + "_few_rows", limit}, {k.name, -1}};
      ck.manifest.rows = graphRows;
    } else {
      build(false, k.name);
      variants = {{k.name, -1}};
    }
    break;
  }
  case KernelKind::CacheWrite:
    break; // done by the runtime in the session's KV cache: no code
  }
  return ck;
}

} // namespace

void emitModule(const ModuleDesc &module, const EmitOptions &options) {
  try {
    PhaseTimer timer(options);
    Halide::Target target = halideTargetOf(options.targetName);
    TileOverrides tiles(target, options.tiles);
    // f16 K/V, or 16-bit graph inputs (bf16/f16 weights), on OpenCL: Halide
    // declares `half` in kernels only with cl_half (the device must offer
    // cl_khr_fp16). Other targets load them as they are.
    if (target.has_feature(Halide::Target::OpenCL)) {
      bool f16 = false;
      for (const EntryDesc &e : module.entries)
        for (const KernelDesc &k : e.kernels) {
          f16 |= k.attention.kvDtype == DType::Float16 ||
                 k.select.kDtype == DType::Float16;
          for (const GraphNode &n : k.graph.nodes)
            f16 |= n.op == "input" &&
                   (n.dtype == DType::Float16 || n.dtype == DType::BFloat16);
        }
      if (f16)
        target = target.with_feature(Halide::Target::CLHalf);
    }
    fs::path outBase = options.outBase;
    std::string moduleName = outBase.filename().string();
    for (char &c : moduleName)
      if (!isalnum(static_cast<unsigned char>(c)))
        c = '_';

    std::vector<Halide::Module> kernels;
    std::vector<std::pair<std::string, std::string>> ptxKernels;
    manifest::ModuleSpec manifest;
    for (const EntryDesc &entry : module.entries) {
      manifest::EntrySpec me;
      me.name = entry.name;
      me.inputs = entry.inputs;
      me.outputs = entry.outputs;
      me.temporaries = entry.temporaries;
      me.valueBuffers = entry.valueBuffers;
      for (const KernelDesc &k : entry.kernels) {
        CompiledKernel ck;
        try {
          ck = compileKernel(k, target);
        } catch (const UnsupportedShape &e) {
          throw std::runtime_error(k.loc + ": " + e.what());
        }
        kernels.insert(kernels.end(), ck.modules.begin(), ck.modules.end());
        ptxKernels.insert(ptxKernels.end(), ck.ptx.begin(), ck.ptx.end());
        me.kernels.push_back(std::move(ck.manifest));
        timer.done("halide: build + lower " + k.name);
      }
      manifest.entries.push_back(std::move(me));
    }
    if (kernels.empty() && ptxKernels.empty())
      throw std::runtime_error("nothing to compile: the module has no entry "
                               "with a kernel");
    TempDir tmp(outBase);
    std::vector<std::pair<fs::path, fs::path>> results; // tmp -> final
    auto result = [&](const std::string &suffix) {
      fs::path p = tmp.path / ("out" + suffix);
      results.emplace_back(p, fs::path(outBase.string() + suffix));
      return p.string();
    };

    if (options.kind == EmitKind::HalideStmt) {
      if (kernels.empty())
        throw std::runtime_error("--emit=halide-stmt: every kernel of this "
                                 "module is a PTX kernel (see --emit=ptx)");
      Halide::link_modules(moduleName, kernels)
          .compile({{Halide::OutputFileType::stmt, result(".stmt")}});
      timer.done("halide: stmt");
    } else {
      fs::path kobj = tmp.path / "kernels.o", robj = tmp.path / "runtime.o";
      // Each pipeline gets its own object, joined by `ld -r`: Halide 14
      // keeps one GPU code blob per module, so GPU pipelines linked into
      // one Halide module lose each other's kernels (cuModuleGetFunction
      // fails). CPU targets take the same path.
      std::string objs, header;
      for (size_t i = 0; i < kernels.size(); ++i) {
        fs::path o = tmp.path / ("k" + std::to_string(i) + ".o");
        fs::path h = tmp.path / ("k" + std::to_string(i) + ".h");
        kernels[i].compile({{Halide::OutputFileType::object, o.string()},
                            {Halide::OutputFileType::c_header, h.string()}});
        objs += " " + shellQuote(o.string());
        std::ifstream in(h);
        header += std::string(std::istreambuf_iterator<char>(in), {}) + "\n";
      }
      // PTX kernels: their text as read-only data symbols.
      for (size_t i = 0; i < ptxKernels.size(); ++i) {
        const auto &[symbol, text] = ptxKernels[i];
        fs::path ptx = tmp.path / ("p" + std::to_string(i) + ".ptx");
        fs::path s = tmp.path / ("p" + std::to_string(i) + ".s");
        fs::path o = tmp.path / ("p" + std::to_string(i) + ".o");
        std::ofstream(ptx, std::ios::binary) << text;
        std::ofstream(s) << embedAsm(symbol, ptx);
        runTool(std::string(targetNamed(options.targetName).linker) + " -c -o " +
                    shellQuote(o.string()) + " " + shellQuote(s.string()),
                tmp.path / "as.log");
        objs += " " + shellQuote(o.string());
        header += "/* " + symbol + ": PTX text of a tensor-core kernel, "
                  "launched by the deltaflow runtime */\nextern const char " +
                  symbol + "[];\n";
      }
      runTool(std::string(targetNamed(options.targetName).linker) +
                  " -r -nostdlib -o " + shellQuote(kobj.string()) + objs,
              tmp.path / "ld-r.log");
      std::ofstream(result(".h")) << header;
      timer.done("llvm: kernel objects");
      Halide::compile_standalone_runtime(robj.string(), target);
      timer.done("halide: standalone runtime");
      if (options.kind == EmitKind::Object) {
        fs::copy_file(kobj, result(".o"));
        fs::copy_file(robj, result(".runtime.o"));
      } else {
        std::string so = result(".so");
        runTool(std::string(targetNamed(options.targetName).linker) +
                    " -shared -o " + shellQuote(so) + " " +
                    shellQuote(kobj.string()) + " " +
                    shellQuote(robj.string()) + " -ldl -lpthread -lm",
                tmp.path / "link.log");
        timer.done("link: " + fs::path(so).filename().string());
      }
      manifest.target = options.targetName;
      manifest.halideTarget = target.to_string();
      manifest.gpu = target.has_gpu_feature();
      manifest.library = outBase.filename().string() + ".so";
      std::ofstream(result(".manifest.json")) << manifest::toJson(manifest);
    }
    for (auto &[from, to] : results)
      fs::rename(from, to);
  } catch (const Halide::Error &e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
      msg.pop_back();
    throw std::runtime_error("Halide: " + msg);
  } catch (const fs::filesystem_error &e) {
    throw std::runtime_error(e.what());
  }
}

} // namespace deltaflow::compiler
