//===- Npy.h - NumPy .npy read/write ----------------------------*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_NPY_H
#define DELTAFLOW_RUNTIME_NPY_H

#include "deltaflow/Runtime/Tensor.h"

#include <string>

namespace deltaflow::rt {

/// Reads a C-ordered little-endian float32 ('<f4') or float16 ('<f2') array.
/// Throws std::runtime_error naming the file and the problem otherwise.
Tensor readNpy(const std::string &path);

/// Writes `t` (in `as` dtype) to `path` through a temporary file renamed into
/// place, so a failed write leaves no partial file.
void writeNpy(const std::string &path, const Tensor &t,
              DType as = DType::Float32);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_NPY_H
