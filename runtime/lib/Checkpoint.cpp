//===- Checkpoint.cpp - a model's weights: one file or a HF checkpoint ----===//

#include "deltaflow/Runtime/Checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

namespace deltaflow::rt {

namespace fs = std::filesystem;

namespace {

const char kSingle[] = "model.safetensors";
const char kIndex[] = "model.safetensors.index.json";

[[noreturn]] void fail(const std::string &msg) { throw std::runtime_error(msg); }

/// The shard names of an index, in order of first use, and the weight map.
std::vector<std::string> readIndex(const fs::path &index,
                                   std::map<std::string, std::string> &map) {
  const std::string where = "checkpoint index " + index.string();
  std::ifstream in(index);
  if (!in)
    fail(where + ": cannot be read");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception &e) {
    fail(where + ": not JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(where + ": no \"weight_map\" object");
  std::vector<std::string> shards;
  std::set<std::string> seen;
  for (auto &[name, file] : j["weight_map"].items()) {
    if (!file.is_string())
      fail(where + ": tensor '" + name + "' maps to " + file.dump() +
           ", not a file name");
    std::string f = file.get<std::string>();
    fs::path p(f);
    if (f.empty() || p.is_absolute() || p.has_parent_path() || f == "." || f == "..")
      fail(where + ": tensor '" + name + "' maps to '" + f +
           "', which is not a file name in the checkpoint's directory");
    map[name] = f;
    if (seen.insert(f).second)
      shards.push_back(f);
  }
  if (map.empty())
    fail(where + ": \"weight_map\" is empty");
  return shards;
}

} // namespace

std::shared_ptr<Checkpoint> Checkpoint::open(const std::string &path) {
  auto c = std::make_shared<Checkpoint>();
  c->path_ = path;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    c->files_.push_back(SafetensorsFile::open(path));
  } else {
    fs::path dir(path);
    std::map<std::string, std::string> map;
    if (fs::exists(dir / kIndex, ec)) {
      for (const std::string &shard : readIndex(dir / kIndex, map)) {
        fs::path p = dir / shard;
        if (!fs::exists(p, ec)) {
          std::string first;
          for (const auto &[name, file] : map)
            if (file == shard) {
              first = name;
              break;
            }
          fail("checkpoint " + path + ": missing shard '" + shard +
               "' (the index maps '" + first + "' to it)");
        }
        c->files_.push_back(SafetensorsFile::open(p.string()));
      }
    } else if (fs::exists(dir / kSingle, ec)) {
      c->files_.push_back(SafetensorsFile::open((dir / kSingle).string()));
    } else {
      fail("checkpoint " + path + ": no " + kSingle + " or " + kIndex +
           " in this directory");
    }
    for (const auto &[name, file] : map) {
      const SafetensorsFile *shard = nullptr;
      for (const auto &f : c->files_)
        if (fs::path(f->path()).filename() == file)
          shard = f.get();
      if (!shard->has(name))
        fail("checkpoint " + path + ": the index maps tensor '" + name +
             "' to '" + file + "', which does not hold it");
    }
  }
  for (const auto &f : c->files_)
    for (const std::string &name : f->names()) {
      auto [it, fresh] = c->owner_.emplace(name, f.get());
      if (!fresh)
        fail("checkpoint " + path + ": tensor '" + name + "' is in both '" +
             fs::path(it->second->path()).filename().string() + "' and '" +
             fs::path(f->path()).filename().string() +
             "' (duplicate tensor names are refused)");
    }
  return c;
}

Tensor Checkpoint::tensor(const std::string &name) const {
  auto it = owner_.find(name);
  if (it == owner_.end())
    fail("weights " + path_ + ": no tensor '" + name + "'");
  return it->second->tensor(name);
}

void Checkpoint::validate(const std::vector<TensorSpec> &expected,
                          const std::string &context) const {
  for (const TensorSpec &spec : expected) {
    auto it = owner_.find(spec.name);
    if (it == owner_.end())
      fail("weights " + path_ + ": missing tensor '" + spec.name +
           "' (expected by " + context + ")");
    it->second->validate({spec}, context);
  }
}

} // namespace deltaflow::rt
