//===- Executor.h - run an entry as a TBB flow graph of kernels -*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_EXECUTOR_H
#define DELTAFLOW_RUNTIME_EXECUTOR_H

#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Runtime/Tensor.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deltaflow::rt {

struct KernelTiming {
  std::string kernel, symbol, kind;
  double seconds = 0;
};

/// Wall time of a run's host phases around its kernels, in seconds.
struct HostPhases {
  double setup = 0;   ///< inputs checked; outputs and temporaries allocated and poisoned
  double outputs = 0; ///< a GPU module's outputs (and temporaries) copied to host memory
};

/// Per-run options and results beyond inputs and outputs.
struct RunOptions {
  /// Filled with each kernel's variant and time. On a GPU module the time
  /// is the launch's alone unless syncEachKernel is set.
  std::vector<KernelTiming> *profile = nullptr;
  /// GPU modules: wait for the device after every kernel, so that each
  /// kernel's time (and any device error) is its own (--profile). Off: the
  /// kernels run asynchronously, in launch order, and the run waits once
  /// after its last kernel.
  bool syncEachKernel = false;
  HostPhases *hostPhases = nullptr; ///< filled when set
  /// Also return the intermediate buffers by their manifest names.
  std::map<std::string, Tensor> *temporaries = nullptr;
  /// Place temporaries in one arena by liveness (off: one buffer each).
  bool planBuffers = true;
  /// Called on the kernel's thread before it runs, with its buffers (inputs
  /// then outputs). Returning true means the hook produced the outputs and
  /// the kernel is skipped (the selection cache does this).
  std::function<bool(const KernelInfo &, std::vector<Tensor> &)> before;
  /// Called after a kernel ran (not when `before` skipped it).
  std::function<void(const KernelInfo &, std::vector<Tensor> &)> after;
  /// Prompt rows that follow this call: 0 (the default) when it ends the
  /// prompt. Δ-correction computes the prompt's last rows densely (its
  /// tail), so an earlier chunk of a chunked prefill (or a benchmark's chunk
  /// in the middle of a context) passes the rows still to come and gets no
  /// tail, or the part of it that it holds.
  int64_t promptRowsAfter = 0;
  /// Run a sparse kernel's dense variant when the context fits its pattern
  /// (sinks + slots + window keys). Tests of the sparse kernels turn it off.
  bool denseFallback = true;
  // Results:
  /// Sparse attention kernels that ran their dense fallback this run (the
  /// context fitted sinks + budget + window); their selections and Δ rows
  /// were skipped.
  int denseFallbacks = 0;
  size_t arenaBytes = 0;    ///< temporaries' arena (planned) this run
  size_t separateBytes = 0; ///< the same temporaries, one buffer each
};

/// Executes entries of one module. Owns one oneTBB task arena; every kernel
/// and every Halide parallel loop inside it runs there, so there is exactly
/// one thread pool. Each entry's flow graph is built once, from the
/// manifest's `deps`, on the entry's first run; later runs (every decode
/// token) reuse it. Runs may come from several threads: one that finds the
/// entry's graph busy builds its own for that run.
///
/// Memory: the executor keeps each entry's last outputs (with their device
/// allocations, on a GPU module) and its temporaries' host arena, as a
/// caching allocator does, and the next run of the entry writes into them
/// when the caller no longer holds them and the shapes match; results the
/// caller holds are never written over. So one run's outputs and arena per
/// entry stay allocated until the executor is destroyed.
class Executor {
public:
  /// `threads` <= 0: the arena's default (honours tbb::global_control).
  /// `device` >= 0: GPU modules run on that GPU (Module::selectDevice,
  /// which throws for a bad index); CPU modules ignore it. -1: Halide's
  /// default (HL_GPU_DEVICE, else its own choice).
  explicit Executor(std::shared_ptr<Module> module, int threads = 0,
                    int device = -1);
  ~Executor();

  /// Validates the inputs against the manifest, allocates outputs and
  /// temporaries, and runs the kernels in dependency order. Outputs are
  /// poisoned with NaN first so that unwritten elements cannot pass a check.
  /// With `temporaries`, also returns the intermediate buffers (a
  /// selection's indices, say) by their manifest names.
  std::map<std::string, Tensor> run(const std::string &entry,
                                    const std::map<std::string, Tensor> &inputs,
                                    std::vector<KernelTiming> *profile = nullptr,
                                    std::map<std::string, Tensor> *temporaries = nullptr);

  std::map<std::string, Tensor> run(const std::string &entry,
                                    const std::map<std::string, Tensor> &inputs,
                                    RunOptions &options);

  int concurrency() const;
  const Module &module() const { return *module_; }

private:
  std::shared_ptr<Module> module_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_EXECUTOR_H
