//===- Executor.h - run an entry as a TBB flow graph of kernels -*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_EXECUTOR_H
#define DELTAFLOW_RUNTIME_EXECUTOR_H

#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Runtime/Tensor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deltaflow::rt {

struct KernelTiming {
  std::string kernel, symbol, kind;
  double seconds = 0;
};

/// Executes entries of one module. Owns one oneTBB task arena; every kernel
/// and every Halide parallel loop inside it runs there, so there is exactly
/// one thread pool.
class Executor {
public:
  /// `threads` <= 0: the arena's default (honours tbb::global_control).
  explicit Executor(std::shared_ptr<Module> module, int threads = 0);
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

  int concurrency() const;
  const Module &module() const { return *module_; }

private:
  std::shared_ptr<Module> module_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_EXECUTOR_H
