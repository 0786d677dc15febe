//===- KernelGraph.h - kernel dependencies and the buffer plan --*- C++ -*-===//
//
// Plain C++ (no MLIR, Halide or TBB). The compiler computes each kernel's
// dependencies here and writes them to the manifest (`deps`); the runtime
// builds its flow graph from those `deps` and places each run's temporaries
// with planBuffers, which deltaflow-compile --emit=plan also reports.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMMON_KERNELGRAPH_H
#define DELTAFLOW_COMMON_KERNELGRAPH_H

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace deltaflow {

/// Read-after-write dependencies of kernels given in a valid execution
/// order: for each kernel, the sorted earlier kernels that last wrote one of
/// its inputs. `Kernel` has `inputs` and `outputs` (buffer names).
template <typename Kernel>
std::vector<std::vector<size_t>>
readAfterWriteDeps(const std::vector<Kernel> &kernels) {
  std::vector<std::vector<size_t>> deps(kernels.size());
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < kernels.size(); ++i) {
    std::set<size_t> d;
    for (const std::string &in : kernels[i].inputs)
      if (auto it = producer.find(in); it != producer.end())
        d.insert(it->second);
    deps[i].assign(d.begin(), d.end());
    for (const std::string &out : kernels[i].outputs)
      producer[out] = i;
  }
  return deps;
}

/// One kernel as the planner sees it.
struct PlanKernel {
  std::vector<std::string> inputs, outputs;
  std::vector<size_t> deps; ///< earlier kernels it waits for
};

struct BufferPlan {
  std::map<std::string, size_t> offset; ///< byte offset of each temporary
  size_t arenaBytes = 0;                ///< one arena holds them all
  size_t separateBytes = 0;             ///< sum of the temporaries' sizes
};

/// Places the temporaries (name -> bytes) in one arena. Kernels run as a
/// dependency graph, possibly concurrently, so two temporaries share memory
/// only when every kernel touching one happens-before (through `deps`)
/// every kernel that writes the other. Kernels are given in a valid
/// execution order. Greedy first fit, largest buffer first, 64-byte aligned.
BufferPlan planBuffers(const std::vector<PlanKernel> &kernels,
                       const std::map<std::string, size_t> &temporaries);

} // namespace deltaflow

#endif // DELTAFLOW_COMMON_KERNELGRAPH_H
