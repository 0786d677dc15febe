//===- Checkpoint.h - a model's weights: one file or a HF checkpoint -*- C++ -*-===//
//
// The weights a model module reads, by name, from one of:
//  * a .safetensors file;
//  * a Hugging Face checkpoint directory holding `model.safetensors`;
//  * a sharded one: `model.safetensors.index.json`, whose "weight_map" maps
//    each tensor name to the shard file (in the same directory) holding it,
//    as transformers' `save_pretrained` writes it.
// Every file is memory-mapped (SafetensorsFile): tensors are views of the
// checkpoint's own files under their own names, never a converted copy.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_CHECKPOINT_H
#define DELTAFLOW_RUNTIME_CHECKPOINT_H

#include "deltaflow/Runtime/Safetensors.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deltaflow::rt {

class Checkpoint {
public:
  /// Opens `path` (a file or a directory, see above). Throws
  /// std::runtime_error with one line naming the path and, where one is at
  /// fault, the tensor or shard, for: a directory without model.safetensors
  /// or model.safetensors.index.json; an index that is not JSON, lacks a
  /// "weight_map" object, maps a tensor to a non-string or to a file name
  /// that leaves the directory; a shard that does not exist (a missing
  /// shard); an index entry whose shard does not hold the tensor; a tensor
  /// name held by two shards (the reference loader refuses duplicates); and
  /// everything SafetensorsFile::open refuses in a shard.
  static std::shared_ptr<Checkpoint> open(const std::string &path);

  const std::string &path() const { return path_; }
  const std::vector<std::shared_ptr<SafetensorsFile>> &files() const {
    return files_;
  }
  bool has(const std::string &name) const { return owner_.count(name) != 0; }
  /// The tensor as a view of its shard's mapping; throws naming the
  /// checkpoint when there is no such tensor.
  Tensor tensor(const std::string &name) const;

  /// SafetensorsFile::validate over the shards: each expected tensor must
  /// exist in some shard with the dtype and static shape `context` expects;
  /// the message names the checkpoint (or the shard) and the tensor.
  void validate(const std::vector<TensorSpec> &expected,
                const std::string &context) const;

private:
  std::string path_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile *> owner_;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_CHECKPOINT_H
