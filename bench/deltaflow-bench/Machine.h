//===- Machine.h - this machine's measured limits ---------------*- C++ -*-===//
#ifndef DELTAFLOW_BENCH_MACHINE_H
#define DELTAFLOW_BENCH_MACHINE_H

#include <string>

namespace deltaflow::bench {

struct MachinePeak {
  double fmaGflops = 0;   ///< fp32 FMA loop, all threads
  double streamGBs = 0;   ///< STREAM triad, all threads
  std::string isa;        ///< which FMA loop ran
};

/// Measures the fp32 FMA peak and the STREAM-triad bandwidth with `threads`.
MachinePeak measureMachine(int threads);
/// Prints the "machine: ..." line every suite starts its report with.
void printMachine(const MachinePeak &peak, int threads);

} // namespace deltaflow::bench

#endif
