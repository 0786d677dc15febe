//===- deltaflow-run.cpp - run an entry of a compiled module --------------===//
//
//   deltaflow-run OUT.so --entry=NAME --input name=file.npy ...
//                 --output name=file.npy ... [--threads N] [--repeat N]
//                 [--profile]
//
//===----------------------------------------------------------------------===//

#include "Generate.h"
#include "Options.h"
#include "Shard.h"
#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Npy.h"

#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace deltaflow::rt;

namespace {

const char *kUsage = R"(usage: deltaflow-run MODULE.so [options]
       deltaflow-run generate --dense DENSE.so --weights W.safetensors [...]
                              (prefill + greedy decode of a model; generate --help)
       mpirun -np N deltaflow-run shard MODULE.so --input q=... [...]
                              (one attention over N key shards, merged by LSE;
                              shard --help)

Runs an entry of a module compiled by deltaflow-compile. Inputs and outputs
are NumPy .npy files. A float32 input accepts float32, or float16 widened
on load; a float16 input (f16 K/V storage) needs a float16 file: float32 is
not narrowed. NumPy has no bfloat16: a bfloat16 input (tensor-core
attention on --target=cuda) takes a float32 file, rounded to nearest even on
load (exact for values that are bfloat16 already, e.g. torch's
x.bfloat16().float()), and bfloat16 outputs are written as float32 (exact).
--list shows each input's dtype.

options:
  --entry=NAME            entry to run (default: the module's only entry)
  --input NAME=FILE.npy   bind an entry input (repeat for each input)
  --output NAME=FILE.npy  write an entry output (repeat; others are dropped)
  --output-dtype=float32|float16
                          dtype of written outputs (default float32)
  --threads N             worker threads (N >= 1; default: all cores)
  --device N              GPU modules: run on GPU N (0-based; N must be
                          below the machine's device count; default: Halide's
                          choice, or HL_GPU_DEVICE). Ignored, with a note,
                          for CPU modules
  --repeat N              run N times, report min and median (default 1)
  --rows-after N          the call is a chunk of a longer prompt that N more
                          rows follow: Δ-correction's dense tail is the
                          prompt's last (Nq mod stride) + max(128, stride)
                          rows, of which the call holds those not among the
                          N (default 0: the call ends the prompt)
  --profile               print per-kernel time of the last run (which
                          kernel variant ran, e.g. a sparse kernel's dense
                          fallback when the context fits its pattern), and
                          the host's time around them: (setup) checks the
                          inputs and allocates the outputs, (outputs)
                          copies a GPU module's results to host memory; the
                          run's time less these and the kernels' is the
                          executor's own
  --temporaries DIR       also write the last run's intermediate buffers
                          (a selection's indices, say) as DIR/NAME.npy
  --list                  print the module's entries and their signatures
  -h, --help              this text
)";

[[noreturn]] void usageError(const std::string &msg) {
  exitWithUsageError("deltaflow-run", msg);
}

int parsePositive(const std::string &opt, const std::string &v) {
  if (auto n = parseInteger(v, 1, 1 << 20))
    return int(*n);
  usageError(opt + " expects a positive integer, got '" + v + "'");
}

std::pair<std::string, std::string> splitBinding(const std::string &opt,
                                                 const std::string &v) {
  size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
    usageError(opt + " expects NAME=FILE.npy, got '" + v + "'");
  return {v.substr(0, eq), v.substr(eq + 1)};
}

std::string describe(const TensorSpec &t) {
  return t.name + ": " + dtypeName(t.dtype) + t.shapeString();
}

} // namespace

int main(int argc, char **argv) {
  std::string modulePath, entryName, temporariesDir;
  std::vector<std::pair<std::string, std::string>> inputFiles, outputFiles;
  int threads = 0, repeat = 1, device = -1;
  bool profile = false, list = false;
  int64_t rowsAfter = 0;
  DType outDtype = DType::Float32;

  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "generate")
    return runGenerate(std::vector<std::string>(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "shard")
    return runShard(std::vector<std::string>(args.begin() + 1, args.end()));
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    auto takeValue = [&](const std::string &name) {
      return takeOption(args, i, name, value, usageError);
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (takeValue("--entry")) {
      entryName = value;
    } else if (takeValue("--input")) {
      inputFiles.push_back(splitBinding("--input", value));
    } else if (takeValue("--output")) {
      outputFiles.push_back(splitBinding("--output", value));
    } else if (takeValue("--output-dtype")) {
      if (value == "float32")
        outDtype = DType::Float32;
      else if (value == "float16")
        outDtype = DType::Float16;
      else
        usageError("--output-dtype must be float32 or float16, got '" + value + "'");
    } else if (takeValue("--threads")) {
      threads = parsePositive("--threads", value);
    } else if (takeValue("--device")) {
      auto n = parseInteger(value, 0, 1 << 20);
      if (!n)
        usageError("--device expects a GPU index >= 0, got '" + value + "'");
      device = int(*n);
    } else if (takeValue("--repeat")) {
      repeat = parsePositive("--repeat", value);
    } else if (takeValue("--temporaries")) {
      if (value.empty())
        usageError("--temporaries needs a directory");
      temporariesDir = value;
    } else if (a == "--profile") {
      profile = true;
    } else if (takeValue("--rows-after")) {
      auto n = parseInteger(value, 0, int64_t(1) << 30);
      if (!n)
        usageError("--rows-after expects an integer >= 0, got '" + value + "'");
      rowsAfter = *n;
    } else if (a == "--list") {
      list = true;
    } else if (!a.empty() && a[0] == '-') {
      usageError("unknown option '" + a + "'");
    } else if (modulePath.empty()) {
      modulePath = a;
    } else {
      usageError("unexpected argument '" + a + "' (module already given as '" +
                 modulePath + "')");
    }
  }
  if (modulePath.empty())
    usageError("no module given");

  std::unique_ptr<tbb::global_control> threadLimit;
  if (threads > 0)
    threadLimit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, threads);

  try {
    auto module = Module::load(modulePath);
    if (list) {
      for (const EntryInfo &e : module->entries()) {
        std::printf("entry %s\n", e.name.c_str());
        for (const TensorSpec &t : e.inputs)
          std::printf("  input  %s\n", describe(t).c_str());
        for (const TensorSpec &t : e.outputs)
          std::printf("  output %s\n", describe(t).c_str());
      }
      return 0;
    }
    if (entryName.empty()) {
      if (module->entries().size() != 1)
        usageError("the module has " + std::to_string(module->entries().size()) +
                   " entries; pick one with --entry");
      entryName = module->entries()[0].name;
    }
    const EntryInfo &entry = module->entry(entryName);
    for (const auto &[name, file] : outputFiles) {
      if (!entry.findOutput(name))
        throw std::runtime_error("entry '" + entryName + "' has no output '" +
                                 name + "'");
      // Before any kernel runs: an output that cannot be written fails now.
      std::string dir = std::filesystem::path(file).parent_path().string();
      if (dir.empty())
        dir = ".";
      if (access(dir.c_str(), W_OK) != 0)
        throw std::runtime_error(file + ": cannot write: " +
                                 std::strerror(errno) + " (directory '" + dir +
                                 "')");
      if (std::filesystem::is_directory(file))
        throw std::runtime_error(file + ": cannot write: Is a directory");
    }

    std::map<std::string, Tensor> inputs;
    for (const auto &[name, file] : inputFiles) {
      if (!entry.findInput(name))
        throw std::runtime_error("entry '" + entryName + "' has no input '" +
                                 name + "'");
      if (inputs.count(name))
        throw std::runtime_error("input '" + name + "' bound twice");
      inputs[name] = convertInput(readNpy(file), entry.findInput(name)->dtype);
    }

    if (device >= 0 && !module->gpu())
      std::fprintf(stderr, "deltaflow-run: note: --device ignored: %s is a "
                           "CPU module (target %s)\n",
                   modulePath.c_str(), module->target().c_str());
    Executor exec(module, threads, device);
    std::vector<double> times;
    std::map<std::string, Tensor> outputs, temporaries;
    std::vector<KernelTiming> prof;
    HostPhases phases;
    for (int r = 0; r < repeat; ++r) {
      prof.clear();
      // Let go of the last run's results first, so that the executor can
      // reuse their memory.
      outputs.clear();
      temporaries.clear();
      auto t0 = std::chrono::steady_clock::now();
      RunOptions ro;
      ro.profile = &prof;
      ro.syncEachKernel = profile; // per-kernel times; otherwise one wait
      ro.hostPhases = &phases;
      ro.temporaries = temporariesDir.empty() ? nullptr : &temporaries;
      ro.promptRowsAfter = rowsAfter;
      outputs = exec.run(entryName, inputs, ro);
      times.push_back(std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - t0)
                          .count());
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    std::printf("entry %s: %d run(s) on %d thread(s): min %.3f ms, median "
                "%.3f ms\n",
                entryName.c_str(), repeat, exec.concurrency(),
                sorted.front() * 1e3, sorted[sorted.size() / 2] * 1e3);
    if (profile)
      for (const KernelTiming &k : prof)
        std::printf("  kernel %-20s %-16s %-28s %9.3f ms\n", k.kernel.c_str(),
                    k.kind.c_str(), k.symbol.c_str(), k.seconds * 1e3);
    if (profile) {
      std::printf("  host   %-20s %-45s %9.3f ms\n", "(setup)",
                  "inputs checked, outputs allocated or reused", phases.setup * 1e3);
      std::printf("  host   %-20s %-45s %9.3f ms\n", "(outputs)",
                  module->gpu() ? "copied from the device" : "(host memory: none)",
                  phases.outputs * 1e3);
    }
    for (const auto &[name, t] : outputs) {
      double sum = 0, abssum = 0;
      Tensor f = t.toFloat32();
      const float *p = f.f32();
      for (int64_t i = 0; i < t.numel(); ++i) {
        sum += p[i];
        abssum += std::abs(p[i]);
      }
      std::printf("  output %s %s: sum %.6e, abs-sum %.6e\n", name.c_str(),
                  t.shapeString().c_str(), sum, abssum);
    }
    // All or nothing: no output is left behind when one cannot be written.
    std::vector<std::pair<std::string, const Tensor *>> files;
    for (const auto &[name, file] : outputFiles)
      files.emplace_back(file, &outputs.at(name));
    writeNpyAll(files, outDtype);
    if (!temporariesDir.empty()) {
      std::filesystem::create_directories(temporariesDir);
      for (const auto &[name, t] : temporaries)
        writeNpy(temporariesDir + "/" + name + ".npy", t, outDtype);
      std::printf("wrote %zu temporar%s to %s\n", temporaries.size(),
                  temporaries.size() == 1 ? "y" : "ies", temporariesDir.c_str());
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "deltaflow-run: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
