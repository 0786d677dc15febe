//===- SparseSuite.h - deltaflow-bench sparse -----------------------------===//
#ifndef DELTAFLOW_BENCH_SPARSESUITE_H
#define DELTAFLOW_BENCH_SPARSESUITE_H

namespace deltaflow::bench {
int runSparse(int argc, char **argv);
} // namespace deltaflow::bench

#endif
