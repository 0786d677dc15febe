//===- Shard.h - deltaflow-run shard ----------------------------*- C++ -*-===//
#ifndef DELTAFLOW_RUN_SHARD_H
#define DELTAFLOW_RUN_SHARD_H

#include <string>
#include <vector>

namespace deltaflow::rt {
/// `deltaflow-run shard ...` (arguments after "shard") under mpirun; exit
/// status.
int runShard(const std::vector<std::string> &args);
} // namespace deltaflow::rt

#endif
