//===- BufferPlan.h - temporaries sharing memory by liveness ----*- C++ -*-===//
//
// Plain C++ (no Halide, no TBB): the runtime plans each run's temporaries
// with it, and deltaflow-compile --emit=plan reports the same plan.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_BUFFERPLAN_H
#define DELTAFLOW_RUNTIME_BUFFERPLAN_H

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace deltaflow::rt {

struct PlanKernel {
  std::vector<std::string> inputs, outputs;
};

struct BufferPlan {
  std::map<std::string, size_t> offset; ///< byte offset of each temporary
  size_t arenaBytes = 0;                ///< one arena holds them all
  size_t separateBytes = 0;             ///< sum of the temporaries' sizes
};

/// Places the temporaries (name -> bytes) in one arena. Kernels run as a
/// dependency graph, possibly concurrently, so two temporaries share memory
/// only when every kernel touching one happens-before (through the
/// dependencies) every kernel that writes the other. Kernels are given in a
/// valid execution order; each buffer's producer precedes its readers.
/// Greedy first fit, largest buffer first, 64-byte aligned.
BufferPlan planBuffers(const std::vector<PlanKernel> &kernels,
                       const std::map<std::string, size_t> &temporaries);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_BUFFERPLAN_H
