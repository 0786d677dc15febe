//===- Safetensors.h - memory-mapped .safetensors weights -------*- C++ -*-===//
//
// A .safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON header ({"NAME": {"dtype": "F32", "shape": [..], "data_offsets":
// [BEGIN, END]}, ..., "__metadata__": {...}}), then the data section, to which
// the offsets are relative.
//
// SafetensorsFile maps the whole file read-only (PROT_READ, MAP_PRIVATE) and
// validates the header once, at open(). Pages come in on demand as tensors
// are read (no read-ahead is requested). tensor() returns views of the
// mapping that keep it alive, so a view may outlive the SafetensorsFile.
//
// Views are read-only: writing through one faults. The file must not be
// truncated or rewritten in place while mapped (a truncated mapping SIGBUSes
// on access); writers should replace it with a rename instead.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_SAFETENSORS_H
#define DELTAFLOW_RUNTIME_SAFETENSORS_H

#include "deltaflow/Runtime/Module.h"
#include "deltaflow/Runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deltaflow::rt {

class SafetensorsFile {
public:
  /// One tensor of the header; offsets are absolute in the file.
  struct Entry {
    DType dtype = DType::Float32;
    std::vector<int64_t> shape;
    uint64_t offset = 0; ///< of the first byte, from the start of the file
    uint64_t bytes = 0;
  };

  /// Maps and validates `path`. Throws std::runtime_error with a one-line
  /// message naming the file (and the tensor, where one is at fault) when the
  /// file cannot be mapped, is shorter than 8 bytes, has an out-of-range
  /// header length, bad JSON, an entry without dtype/shape/data_offsets, a
  /// dtype other than F32/F16/I32, bad or overlapping data_offsets, data past
  /// the end of the file ("truncated"), or a byte size that is not
  /// numel * dtype size.
  static std::shared_ptr<SafetensorsFile> open(const std::string &path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  const std::string &path() const { return path_; }
  /// Tensor names, sorted ("__metadata__" excluded).
  std::vector<std::string> names() const;
  bool has(const std::string &name) const;
  /// Throws naming the file and the tensor when there is no such tensor.
  const Entry &entry(const std::string &name) const;

  /// The tensor, as a view of the mapping (no copy) that keeps the mapping
  /// alive. The format only aligns the data as its writer chose: a tensor
  /// whose data is not 4-byte aligned in memory is copied into an owned
  /// (64-byte aligned) tensor instead; isZeroCopy() says which one applies.
  Tensor tensor(const std::string &name) const;
  bool isZeroCopy(const std::string &name) const;

  /// Checks that every `expected` tensor exists with the same dtype, rank and
  /// static dimensions (dimensions of size -1, and derived ones, are free).
  /// Throws on the first mismatch, naming the file, the tensor, what
  /// `context` (e.g. "entry 'decode' of llama.so") expects and what was
  /// found; missing tensors read
  /// "weights FILE: missing tensor 'NAME' (expected by CONTEXT)".
  void validate(const std::vector<TensorSpec> &expected,
                const std::string &context) const;

  /// The mapped bytes of the whole file (header included).
  const uint8_t *data() const;
  uint64_t size() const;

private:
  struct Mapping;
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  std::map<std::string, Entry> entries_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_SAFETENSORS_H
