//===- deltaflow-compile.cpp - .mlir graph -> native .so ------------------===//
//
//   deltaflow-compile FILE.mlir -o OUT [--target=NAME] [--tile NAME=VALUE ...]
//                     [--sparsity="policy=... budget=..."] [--delta="stride=64"]
//                     [--load-pass-plugin=lib.so] [--emit=so|object|mlir|halide-stmt]
//                     [--timing]
//
// Writes OUT.so (AOT kernels + a standalone Halide runtime), OUT.h (C entry
// points) and OUT.manifest.json (entries, arguments, shapes, kernels).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/ModuleEmitter.h"
#include "deltaflow/Compiler/Partition.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Compiler/TensorCore.h"
#include "deltaflow/Transforms/Passes.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include "deltaflow/Common/KernelGraph.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <chrono>

namespace cl = llvm::cl;

static cl::OptionCategory category("deltaflow-compile options");

static cl::opt<std::string> inputFile(cl::cat(category), cl::Positional, cl::desc("<input.mlir>"),
                                      cl::Required);
static cl::opt<std::string>
    outBase(cl::cat(category), "o", cl::desc("Output base name: writes OUT.so, OUT.h and "
                          "OUT.manifest.json (or OUT.mlir, OUT.stmt, OUT.o)"),
            cl::value_desc("OUT"), cl::Required);
static cl::opt<std::string>
    target(cl::cat(category), "target",
           cl::desc("Target (default host); the list is below"),
           cl::init("host"));
static cl::list<std::string> tiles(cl::cat(category), "tile",
    cl::desc("Override a tile size of the target's schedule, NAME=VALUE "
             "(repeatable; the names and bounds are below)"),
    cl::value_desc("NAME=VALUE"));
enum class Emit { So, Object, Mlir, HalideStmt, Plan, Ptx, GpuMlir };
static cl::opt<Emit> emit(cl::cat(category), 
    "emit", cl::desc("What to write"), cl::init(Emit::So),
    cl::values(
        clEnumValN(Emit::So, "so", "shared library + header + manifest"),
        clEnumValN(Emit::Object, "object",
                   "kernel object + runtime object + header + manifest"),
        clEnumValN(Emit::Mlir, "mlir", "the MLIR after deltaflow's passes"),
        clEnumValN(Emit::HalideStmt, "halide-stmt",
                   "Halide's lowered statements of every kernel"),
        clEnumValN(Emit::Plan, "plan",
                   "print the kernels, their dependencies and the buffer "
                   "plan with its peak memory (no files)"),
        clEnumValN(Emit::Ptx, "ptx",
                   "--target=cuda: the PTX of the tensor-core kernels "
                   "(OUT.ptx)"),
        clEnumValN(Emit::GpuMlir, "gpu-mlir",
                   "--target=cuda: the tensor-core kernels as MLIR gpu + "
                   "nvgpu + nvvm, before lowering (OUT.gpu.mlir)")));
static cl::opt<int64_t> planSize(cl::cat(category), "plan-size",
    cl::desc("--emit=plan: the size of every dynamic dimension (tokens)"),
    cl::init(4096));
static cl::opt<bool> timing(cl::cat(category), "timing", cl::desc("Print the time of each phase"));
static cl::opt<std::string> sparsity(cl::cat(category), 
    "sparsity",
    cl::desc("Sparsify attention: attn-sparsify options, e.g. "
             "\"policy=token-select budget=2048 sinks=128 window=512 "
             "chunk=512\" (policies: window, token-select, adaptive, "
             "block-topk, or a plug-in's)"),
    cl::value_desc("options"));
static cl::opt<std::string>
    delta(cl::cat(category), "delta",
          cl::desc("Add the Delta correction: attn-delta-correct options, "
                   "e.g. \"stride=64\""),
          cl::value_desc("options"));
static cl::opt<std::string> finiteMaskThreshold(cl::cat(category),
    "finite-mask-threshold",
    cl::desc("attn-raise: also raise TOSA attention whose causal mask hides "
             "keys with a finite value <= T (e.g. -1e4), assuming every "
             "score is far above T. Without it only -inf and the element "
             "type's lowest value count as hidden, which is exact"),
    cl::value_desc("T"));
// Listed for --help; the driver takes these arguments out before parsing.
static cl::list<std::string> pluginHelp(cl::cat(category), 
    "load-pass-plugin",
    cl::desc("Load a pass plug-in (a shared library registering sparsity "
             "policies), as mlir-opt does"),
    cl::value_desc("lib.so"));

/// --emit=plan: every entry's kernels with their dependencies, and where
/// the buffer plan puts the temporaries when every dynamic dimension is `n`.
static int printPlan(const deltaflow::compiler::ModuleDesc &desc, int64_t n) {
  using namespace deltaflow::compiler;
  namespace manifest = ::deltaflow::manifest;
  if (n < 1) {
    llvm::errs() << "deltaflow-compile: error: --plan-size must be >= 1\n";
    return 1;
  }
  auto bytesOf = [&](const TensorSpec &t) { return manifest::bytesAt(t, n); };
  auto mib = [](size_t b) { return double(b) / (1 << 20); };
  for (const EntryDesc &e : desc.entries) {
    llvm::outs() << "entry " << e.name << " (dynamic dimensions = " << n << ")\n";
    for (const TensorSpec &t : e.inputs)
      llvm::outs() << "  input " << t.name << ": " << manifest::toString(t.dtype)
                   << t.shapeString()
                   << (t.roleOrInput() == Role::Input
                           ? std::string()
                           : std::string(" (") + manifest::toString(*t.role) + ")")
                   << "\n";
    std::vector<deltaflow::PlanKernel> kernels;
    std::map<std::string, size_t> temps;
    for (const TensorSpec &t : e.temporaries)
      temps[t.name] = bytesOf(t);
    for (size_t i = 0; i < e.kernels.size(); ++i) {
      const KernelDesc &k = e.kernels[i];
      std::string deps, ops = k.graph.opsSummary();
      for (size_t d : k.deps)
        deps += (deps.empty() ? "" : ",") + std::to_string(d);
      std::string kv =
          k.attention.kvDtype != DType::Float32
              ? std::string("kv ") + manifest::toString(k.attention.kvDtype) + "  "
          : k.select.kDtype != DType::Float32
              ? std::string("k ") + manifest::toString(k.select.kDtype) + "  "
              : "";
      llvm::outs() << llvm::format("  k%-3zu %-16s after [%s]  ", i,
                                   manifest::toString(k.kind), deps.c_str())
                   << (ops.empty() ? "" : ops + "  ") << kv << k.loc << "\n";
      kernels.push_back({k.inputs, k.outputs, k.deps});
    }
    deltaflow::BufferPlan plan = deltaflow::planBuffers(kernels, temps);
    for (const TensorSpec &t : e.temporaries)
      llvm::outs() << llvm::format("  %-22s %10.2f MiB at offset %10.2f MiB\n",
                                   t.name.c_str(), mib(temps[t.name]),
                                   mib(plan.offset[t.name]));
    size_t values = 0;
    for (const TensorSpec &t : e.valueBuffers)
      values += bytesOf(t);
    llvm::outs() << llvm::format(
        "  peak: planned temporaries %.2f MiB; one buffer per kernel output "
        "%.2f MiB; one buffer per value %.2f MiB (%.0f%% less)\n",
        mib(plan.arenaBytes), mib(plan.separateBytes), mib(values),
        values ? 100.0 * (1.0 - double(plan.arenaBytes) / double(values)) : 0.0);
  }
  return 0;
}

/// --target=cuda: builds the tensor-core kernel of every attention with a
/// bf16/f16 query (compiler/TensorCore). Reports a located error and
/// returns false for a shape it does not cover.
static bool buildTensorCoreKernels(
    deltaflow::compiler::ModuleDesc &desc, const std::map<std::string, int> &tiles,
    const std::map<std::string, deltaflow::compiler::GemmKernel> &gemms) {
  using namespace deltaflow::compiler;
  namespace manifest = ::deltaflow::manifest;
  if (desc.target != "cuda")
    return true;
  for (EntryDesc &e : desc.entries)
    for (KernelDesc &k : e.kernels) {
      if (auto g = gemms.find(k.name); g != gemms.end() && k.kind == KernelKind::Graph) {
        try {
          // Decode's static few rows: the GEMV alone; otherwise the GEMM
          // with the GEMV below kGemmMinRows rows.
          const GemmKernel &gk = g->second;
          if (gk.fewRows) {
            k.tensorCore = buildGemv(gk.weight, gk.k, gk.n, k.name,
                                     std::clamp<int64_t>(gk.rows, 1, kGemvMaxRowsPerPass));
          } else {
            k.tensorCore = buildTensorCoreGemm(gk.weight, gk.k, gk.n, k.name);
            k.decode = buildGemv(gk.weight, gk.k, gk.n, k.name + "_gemv");
            k.decode->maxRows = kGemmMinRows - 1;
          }
        } catch (const std::exception &ex) {
          llvm::errs() << k.loc << ": error: " << ex.what() << "\n";
          return false;
        }
        continue;
      }
      if (k.kind == KernelKind::Select && k.select.qDtype != DType::Float32) {
        DeviceSelectSpec s;
        static_cast<manifest::SelectParams &>(s) = k.select;
        s.hq = k.select.hq;
        s.hkv = k.select.hkv;
        s.d = k.select.d;
        s.dtype = k.select.qDtype;
        try {
          k.deviceSelect = buildDeviceSelect(s, k.name);
        } catch (const std::exception &ex) {
          llvm::errs() << k.loc << ": error: " << ex.what() << "\n";
          return false;
        }
        continue;
      }
      if (k.kind == KernelKind::DeltaCorrect && k.attention.dtype != DType::Float32) {
        try {
          k.tensorCore = buildDeltaCorrect(k.attention.dtype, k.attention.dv,
                                           k.stride, k.name);
        } catch (const std::exception &ex) {
          llvm::errs() << k.loc << ": error: " << ex.what() << "\n";
          return false;
        }
        continue;
      }
      if (k.kind == KernelKind::DenseRows && k.attention.dtype != DType::Float32) {
        // Δ's rows: split-K over the keys on a 4-warp tile (a call has few
        // rows: ceil(Nq / stride) and a tail).
        TensorCoreTile tile;
        tile.warps = 4;
        tile.keyTile = k.attention.d <= 128 ? 64 : 32;
        if (auto it = tiles.find("tensorcore.rows-warps"); it != tiles.end())
          tile.warps = it->second;
        if (auto it = tiles.find("tensorcore.rows-key-tile"); it != tiles.end())
          tile.keyTile = it->second;
        try {
          k.tensorCore = buildDenseRowsAttention(k.attention, tile, k.name, k.stride);
        } catch (const std::exception &ex) {
          llvm::errs() << k.loc << ": error: " << ex.what() << "\n";
          return false;
        }
        continue;
      }
      // Dense and sparse attention (Partition admits a 16-bit query only
      // there, in Δ's rows and in a selection).
      const bool sparse = k.kind == KernelKind::SparseAttention;
      if ((k.kind != KernelKind::Attention && !sparse) ||
          k.attention.dtype == DType::Float32)
        continue;
      // Defaults from the H200 sweep (bench/gpu/tensorcore.py, 2026-12-01,
      // docs/gpu-2026-12-01.md): 8 warps x 64-key tiles for D <= 128 (307
      // TFLOP/s causal at 32K against 274 for 4 warps); D = 256 keeps 4
      // warps x 32 keys, where the accumulators fill the registers.
      TensorCoreTile tile;
      tile.warps = k.attention.d <= 128 ? 8 : 4;
      tile.keyTile = k.attention.d <= 128 ? 64 : 32;
      // A selection's chunk must hold whole CTAs (16 rows per warp).
      if (sparse && k.sparse.slots > 0)
        while (tile.warps > 1 && k.sparse.chunk % (16 * tile.warps) != 0)
          tile.warps /= 2;
      if (auto it = tiles.find("tensorcore.warps"); it != tiles.end())
        tile.warps = it->second;
      if (auto it = tiles.find("tensorcore.key-tile"); it != tiles.end())
        tile.keyTile = it->second;
      if (auto it = tiles.find("tensorcore.address-bits"); it != tiles.end())
        tile.addressBits = it->second;
      try {
        k.tensorCore = buildTensorCoreAttention(k.attention, tile, k.name,
                                                sparse ? &k.sparse : nullptr,
                                                k.sparse.selHeads);
        // Dense attention also gets the split-K decode kernels for a few
        // query rows where they cover the shape (the tile serves the rest).
        int64_t decodeRows = 4;
        if (auto it = tiles.find("tensorcore.decode-rows"); it != tiles.end())
          decodeRows = it->second;
        if (!sparse && decodeRows > 0 && decodeUnsupported(k.attention).empty()) {
          DecodeTile dt;
          if (auto it = tiles.find("tensorcore.decode-keys-per-step"); it != tiles.end())
            dt.keysPerStep = int(it->second);
          if (auto it = tiles.find("tensorcore.decode-prefetch"); it != tiles.end())
            dt.prefetch = it->second != 0;
          k.decode = buildDecodeAttention(k.attention, k.name + "_decode", dt);
          k.decode->maxRows = decodeRows;
        }
      } catch (const std::exception &ex) {
        llvm::errs() << k.loc << ": error: " << ex.what() << "\n";
        return false;
      }
    }
  return true;
}

/// --emit=ptx / gpu-mlir: writes every tensor-core kernel's PTX or MLIR.
static int writeTensorCoreKernels(const deltaflow::compiler::ModuleDesc &desc,
                                  const std::string &path, bool mlir) {
  std::string text;
  for (const auto &e : desc.entries)
    for (const auto &k : e.kernels)
      if (k.tensorCore) {
        if (k.decode)
          text += (mlir ? k.decode->mlir : k.decode->ptx) + "\n";
        text += (mlir ? k.tensorCore->mlir : k.tensorCore->ptx) + "\n";
      }
      else if (k.deviceSelect)
        text += (mlir ? k.deviceSelect->mlir : k.deviceSelect->ptx) + "\n";
  if (text.empty()) {
    llvm::errs() << "deltaflow-compile: error: no tensor-core kernel to emit: "
                    "they are built for attention with a bf16 or f16 query "
                    "under --target=cuda\n";
    return 1;
  }
  std::string error;
  auto out = mlir::openOutputFile(path, &error);
  if (!out) {
    llvm::errs() << "deltaflow-compile: error: " << error << "\n";
    return 1;
  }
  out->os() << text;
  out->keep();
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  std::string pluginError;
  if (!mlir::deltaflow::loadPluginArguments(argc, argv, pluginError)) {
    llvm::errs() << "deltaflow-compile: error: " << pluginError << "\n";
    return 1;
  }
  mlir::deltaflow::registerDeltaflowPasses();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  cl::HideUnrelatedOptions(category);
  std::string policies;
  for (const std::string &name : ::deltaflow::sparsity::policyNames())
    policies += (policies.empty() ? "" : ", ") + name;
  // The target table, for --help (it lists what --target and --tile take).
  static std::string targetHelp = "\n" + deltaflow::compiler::targetHelp();
  static cl::extrahelp targetHelpText(targetHelp);
  cl::ParseCommandLineOptions(
      argc, argv,
      "deltaflow-compile: ahead-of-time compile an .mlir graph into a shared "
      "library\n\nSparsity policies registered: " +
          policies +
          "\nExample:\n  deltaflow-compile examples/attention.mlir -o build/ts "
          "--sparsity=\"policy=token-select budget=2048\" --delta=\"stride=64\"\n");

  // --target and --tile are checked first, whatever --emit asks for.
  std::map<std::string, int> tileOverrides;
  try {
    for (const std::string &t : tiles) {
      auto [name, value] = deltaflow::compiler::parseTileAssignment(t);
      tileOverrides[name] = value;
    }
    deltaflow::compiler::checkTargetOptions(target, tileOverrides);
  } catch (const std::exception &e) {
    llvm::errs() << "deltaflow-compile: error: " << e.what() << "\n";
    return 1;
  }

  auto start = std::chrono::steady_clock::now();
  auto last = start;
  auto phase = [&](const std::string &what, double seconds) {
    if (timing)
      llvm::errs() << llvm::format("  %7.3f s  ", seconds) << what << "\n";
  };
  auto tick = [&](const std::string &what) {
    auto now = std::chrono::steady_clock::now();
    phase(what, std::chrono::duration<double>(now - last).count());
    last = now;
  };

  std::string base = outBase;
  if (llvm::StringRef(base).ends_with(".so"))
    base.resize(base.size() - 3);

  mlir::DialectRegistry registry;
  mlir::deltaflow::registerDeltaflowDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  std::string error;
  auto file = mlir::openInputFile(inputFile, &error);
  if (!file) {
    llvm::errs() << "deltaflow-compile: " << error << "\n";
    return 1;
  }
  if (std::string why = mlir::deltaflow::tooDeeplyNestedText(
          file->getBuffer(), inputFile == "-" ? std::string("<stdin>") : std::string(inputFile));
      !why.empty()) {
    llvm::errs() << why << "\n";
    return 1;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;
  tick("parse + verify " + inputFile);

  mlir::PassManager pm(&context);
  // Attention written out in TOSA is raised first, so that every later pass
  // (sparsify, delta) sees it as attn.attention.
  std::string pipeline = "attn-raise";
  if (finiteMaskThreshold.getNumOccurrences()) {
    double t = 0;
    if (llvm::StringRef(finiteMaskThreshold).getAsDouble(t) || !(t < 0) ||
        !std::isfinite(t)) {
      llvm::errs() << "deltaflow-compile: error: --finite-mask-threshold "
                      "must be a finite negative number, got '"
                   << finiteMaskThreshold << "'\n";
      return 1;
    }
    pipeline += "{finite-mask-threshold=" + finiteMaskThreshold + "}";
  }
  pipeline += ",";
  for (auto [flag, text] : {std::pair<const char *, const std::string *>{
                                 "--sparsity", &sparsity.getValue()},
                             {"--delta", &delta.getValue()}})
    if (std::string why = mlir::deltaflow::unbalancedOptionText(*text);
        !why.empty()) {
      llvm::errs() << "deltaflow-compile: error: bad " << flag
                   << " options: " << why << " of \"" << *text << "\"\n";
      return 1;
    }
  if (sparsity.getNumOccurrences())
    pipeline += "attn-sparsify{" + sparsity + "},";
  if (delta.getNumOccurrences())
    pipeline += "attn-delta-correct{" + delta + "},";
  pipeline += "exact-canonicalize,cse";
  // Each text may be fine alone and the pipeline not: MLIR cuts a pass's
  // {options} counting braces inside quotes, so "--sparsity=a=x'{'" takes
  // --delta's text into attn-sparsify's options.
  if (std::string why = mlir::deltaflow::unbalancedOptionText(pipeline, /*pipeline=*/true);
      !why.empty()) {
    llvm::errs() << "deltaflow-compile: error: bad --sparsity/--delta options: "
                 << why << " of the pass pipeline \"" << pipeline << "\"\n";
    return 1;
  }
  std::string pipelineErrors;
  llvm::raw_string_ostream pipelineErrorStream(pipelineErrors);
  if (mlir::failed(mlir::parsePassPipeline(pipeline, pm, pipelineErrorStream))) {
    std::string msg = pipelineErrorStream.str();
    while (!msg.empty() && msg.back() == '\n')
      msg.pop_back();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    llvm::errs() << "deltaflow-compile: error: bad --sparsity/--delta options: "
                 << msg << "\n";
    return 1;
  }
  if (mlir::failed(pm.run(*module)))
    return 1;
  tick("passes: " + pipeline);

  if (emit == Emit::Mlir) {
    auto out = mlir::openOutputFile(base + ".mlir", &error);
    if (!out) {
      llvm::errs() << "deltaflow-compile: " << error << "\n";
      return 1;
    }
    module->print(out->os());
    out->keep();
    return 0;
  }

  auto desc = mlir::deltaflow::partitionModule(*module);
  if (mlir::failed(desc))
    return 1;
  desc->target = target;
  tick("partition into kernels");
  // --target=cuda: matmuls by 16-bit nn.Linear weights become kernels of
  // their own, for the tensor-core GEMM (--tile tensorcore.gemm=0 keeps
  // them in Halide's SIMT kernels). --target=opencl splits them the same
  // way with --tile tensorcore.gemm=1 (the parts all run in Halide), so
  // that CI checks the split on pocl.
  std::map<std::string, deltaflow::compiler::GemmKernel> gemms;
  auto gemmTile = tileOverrides.find("tensorcore.gemm");
  bool gemmOn = gemmTile == tileOverrides.end() ? target == "cuda" : gemmTile->second != 0;
  if (gemmOn && (target == "cuda" || target == "opencl"))
    for (auto &e : desc->entries)
      for (auto &g : deltaflow::compiler::splitTensorCoreGemms(e, target == "cuda"))
        gemms[g.kernel] = g;
  if (emit == Emit::Plan)
    return printPlan(*desc, planSize);
  if (!buildTensorCoreKernels(*desc, tileOverrides, gemms))
    return 1;
  tick("tensor-core kernels (MLIR NVGPU -> PTX)");
  if (emit == Emit::Ptx || emit == Emit::GpuMlir)
    return writeTensorCoreKernels(*desc, base + (emit == Emit::Ptx ? ".ptx" : ".gpu.mlir"),
                                  emit == Emit::GpuMlir);

  deltaflow::compiler::EmitOptions options;
  options.outBase = base;
  options.targetName = target;
  options.tiles = tileOverrides;
  options.kind = emit == Emit::Object ? deltaflow::compiler::EmitKind::Object
                 : emit == Emit::HalideStmt
                     ? deltaflow::compiler::EmitKind::HalideStmt
                     : deltaflow::compiler::EmitKind::SharedLibrary;
  options.onPhase = phase;
  try {
    deltaflow::compiler::emitModule(*desc, options);
  } catch (const std::exception &e) {
    llvm::errs() << "deltaflow-compile: error: " << e.what() << "\n";
    return 1;
  }
  if (timing)
    llvm::errs() << llvm::format(
        "  %7.3f s  total\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  return 0;
}
