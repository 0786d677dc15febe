//===- Generate.h - deltaflow-run generate ----------------------*- C++ -*-===//
#ifndef DELTAFLOW_RUN_GENERATE_H
#define DELTAFLOW_RUN_GENERATE_H

#include <string>
#include <vector>

namespace deltaflow::rt {
/// `deltaflow-run generate ...` (arguments after "generate"); exit status.
int runGenerate(const std::vector<std::string> &args);
} // namespace deltaflow::rt

#endif
