//===- Npy.h - NumPy .npy read/write ----------------------------*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_NPY_H
#define DELTAFLOW_RUNTIME_NPY_H

#include "deltaflow/Runtime/Tensor.h"

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace deltaflow::rt {

/// The header dict of a .npy file (NumPy's format, version 1-3).
struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
};

/// Parses the header text exactly as numpy.lib.format writes it: a dict
/// with the keys 'descr' (a string), 'fortran_order' (True/False) and
/// 'shape' (a tuple of non-negative int64 integers; "(5,)" for one
/// dimension), each once, then spaces and a newline. Throws one line
/// naming `path` and the byte where it stopped.
NpyHeader parseNpyHeader(const std::string &text, const std::string &path);

/// Reads a C-ordered little-endian float32 ('<f4'), float16 ('<f2') or int32
/// ('<i4') array. Throws std::runtime_error naming the file and the problem
/// otherwise (before allocating anything for data the file does not hold).
Tensor readNpy(const std::string &path);

/// The same from an open stream (seekable: the data size is checked against
/// what remains before allocating); `path` names it in errors.
Tensor readNpy(std::istream &in, const std::string &path);

/// Writes `t` (in `as` dtype) to `path` through a temporary file renamed into
/// place, so a failed write leaves no partial file.
void writeNpy(const std::string &path, const Tensor &t,
              DType as = DType::Float32);

/// Writes every (path, tensor) all or nothing: each goes to a temporary
/// file beside its path first, and the files are renamed into place only
/// when every one was written. On failure no temporary remains and no
/// path has changed (unless a rename itself fails part-way, which leaves
/// the files renamed before it).
void writeNpyAll(const std::vector<std::pair<std::string, const Tensor *>> &files,
                 DType as = DType::Float32);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_NPY_H
