//===- Safetensors.cpp - memory-mapped .safetensors weights ---------------===//

#include "deltaflow/Runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace deltaflow::rt {

namespace {

/// The reference implementation refuses larger headers too.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// safetensors dtype names, indexed by DType (float32, float16, int32,
/// bfloat16).
const char *const kStNames[] = {"F32", "F16", "I32", "BF16"};
static_assert(std::size(kStNames) == size_t(DType::BFloat16) + 1,
              "one safetensors name per DType");

const char *stName(DType t) { return kStNames[size_t(t)]; }

bool parseStDtype(const std::string &s, DType &out) {
  for (size_t i = 0; i < std::size(kStNames); ++i)
    if (s == kStNames[i]) {
      out = DType(i);
      return true;
    }
  return false;
}

/// Closes a file descriptor on every path out of open().
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

struct SafetensorsFile::Mapping {
  void *base = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  ~Mapping() {
    if (base)
      ::munmap(base, size);
  }
};

std::shared_ptr<SafetensorsFile>
SafetensorsFile::open(const std::string &path) {
  const std::string where = "safetensors " + path;
  auto fail = [&](const std::string &msg) -> std::runtime_error {
    return std::runtime_error(where + ": " + msg);
  };

  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0)
    throw fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.fd, &st) != 0)
    throw fail(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw fail("not a regular file");
  uint64_t size = uint64_t(st.st_size);
  if (size < 8)
    throw fail("file is " + std::to_string(size) +
               " bytes, shorter than the 8-byte header length");

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile);
  f->path_ = path;
  f->map_ = std::make_shared<Mapping>();
  void *base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (base == MAP_FAILED)
    throw fail(std::string("cannot mmap: ") + std::strerror(errno));
  f->map_->base = base;
  f->map_->size = size;
  ::close(fd.fd); // the mapping keeps the file
  fd.fd = -1;

  const auto *bytes = static_cast<const uint8_t *>(base);
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | bytes[i];
  if (headerLen > size - 8) {
    if (headerLen > kMaxHeaderBytes)
      throw fail("absurd header length " + std::to_string(headerLen) +
                 " (file is " + std::to_string(size) +
                 " bytes): not a safetensors file?");
    throw fail("header length " + std::to_string(headerLen) +
               " goes beyond the end of the file (" + std::to_string(size) +
               " bytes): truncated?");
  }
  if (headerLen > kMaxHeaderBytes)
    throw fail("absurd header length " + std::to_string(headerLen) +
               " (limit " + std::to_string(kMaxHeaderBytes) + " bytes)");

  nlohmann::json header;
  // The reference implementation refuses a tensor name given twice; the
  // JSON library would keep the last, so the keys are watched as parsed.
  std::set<std::string> topKeys;
  std::string duplicate;
  try {
    const char *h = reinterpret_cast<const char *>(bytes + 8);
    header = nlohmann::json::parse(
        h, h + headerLen,
        [&](int depth, nlohmann::json::parse_event_t event,
            nlohmann::json &parsed) {
          if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
              !topKeys.insert(parsed.get<std::string>()).second &&
              duplicate.empty())
            duplicate = parsed.get<std::string>();
          return true;
        });
  } catch (const nlohmann::json::exception &e) {
    throw fail(std::string("bad JSON header: ") + e.what());
  }
  if (!duplicate.empty())
    throw fail("tensor '" + duplicate + "' is listed twice in the header");
  if (!header.is_object())
    throw fail("JSON header is not an object");

  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = size - dataStart;
  struct Span {
    uint64_t begin, end;
    const std::string *name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    if (name == "__metadata__")
      continue;
    const std::string tw = "tensor '" + name + "'";
    const nlohmann::json &j = it.value();
    if (!j.is_object())
      throw fail(tw + ": header entry is not an object");
    for (const char *key : {"dtype", "shape", "data_offsets"})
      if (!j.contains(key))
        throw fail(tw + ": no '" + key + "'");

    Entry e;
    const nlohmann::json &dt = j.at("dtype");
    if (!dt.is_string())
      throw fail(tw + ": 'dtype' is not a string");
    if (!parseStDtype(dt.get<std::string>(), e.dtype))
      throw fail(tw + ": unsupported dtype '" + dt.get<std::string>() +
                 "' (supported: F32, F16, I32, BF16)");

    const nlohmann::json &sh = j.at("shape");
    if (!sh.is_array())
      throw fail(tw + ": 'shape' is not an array");
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto &d : sh) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
        throw fail(tw + ": bad dimension " + d.dump() + " in shape " +
                   sh.dump());
      e.shape.push_back(d.get<int64_t>());
      overflow |= __builtin_mul_overflow(numel, d.get<uint64_t>(), &numel);
    }

    const nlohmann::json &off = j.at("data_offsets");
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      throw fail(tw + ": 'data_offsets' " + off.dump() +
                 " is not [begin, end]");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end)
      throw fail(tw + ": 'data_offsets' " + off.dump() + " has begin > end");
    if (end > dataSize)
      throw fail(tw + ": data [" + std::to_string(begin) + ", " +
                 std::to_string(end) + ") ends beyond the data section (" +
                 std::to_string(dataSize) + " bytes): file truncated");
    uint64_t want = 0;
    overflow |= __builtin_mul_overflow(numel, dtypeSize(e.dtype), &want);
    if (overflow || want != end - begin)
      throw fail(tw + ": " + std::to_string(end - begin) +
                 " bytes of data for " + stName(e.dtype) + " " + sh.dump() +
                 (overflow ? " (element count overflows)"
                           : " (expected " + std::to_string(want) + ")"));
    e.offset = dataStart + begin;
    e.bytes = end - begin;
    auto ins = f->entries_.emplace(name, std::move(e));
    if (begin != end)
      spans.push_back({begin, end, &ins.first->first});
  }

  std::sort(spans.begin(), spans.end(), [](const Span &a, const Span &b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw fail("tensors '" + *spans[i - 1].name + "' [" +
                 std::to_string(spans[i - 1].begin) + ", " +
                 std::to_string(spans[i - 1].end) + ") and '" + *spans[i].name +
                 "' [" + std::to_string(spans[i].begin) + ", " +
                 std::to_string(spans[i].end) + ") overlap");
  // As the reference implementation: the tensors cover the data section
  // exactly, with no byte that no tensor owns.
  uint64_t covered = 0;
  for (const Span &sp : spans) {
    if (sp.begin != covered)
      throw fail("bytes [" + std::to_string(covered) + ", " +
                 std::to_string(sp.begin) +
                 ") of the data section belong to no tensor (before '" +
                 *sp.name + "')");
    covered = sp.end;
  }
  if (covered != dataSize)
    throw fail("bytes [" + std::to_string(covered) + ", " +
               std::to_string(dataSize) +
               ") at the end of the data section belong to no tensor");
  return f;
}

SafetensorsFile::~SafetensorsFile() = default; // views may keep map_ alive

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto &kv : entries_)
    out.push_back(kv.first);
  return out;
}

bool SafetensorsFile::has(const std::string &name) const {
  return entries_.count(name) != 0;
}

const SafetensorsFile::Entry &
SafetensorsFile::entry(const std::string &name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw std::runtime_error("safetensors " + path_ + ": no tensor '" + name +
                             "'");
  return it->second;
}

const uint8_t *SafetensorsFile::data() const {
  return static_cast<const uint8_t *>(map_->base);
}
uint64_t SafetensorsFile::size() const { return map_->size; }

bool SafetensorsFile::isZeroCopy(const std::string &name) const {
  return reinterpret_cast<uintptr_t>(data() + entry(name).offset) % 4 == 0;
}

Tensor SafetensorsFile::tensor(const std::string &name) const {
  const Entry &e = entry(name);
  auto *p = const_cast<uint8_t *>(data() + e.offset);
  if (isZeroCopy(name))
    return Tensor::view(e.shape, e.dtype, p, map_);
  // Misaligned for the kernels' loads: an owned, aligned copy.
  Tensor t(e.shape, e.dtype);
  std::memcpy(t.raw(), p, e.bytes);
  return t;
}

void SafetensorsFile::validate(const std::vector<TensorSpec> &expected,
                               const std::string &context) const {
  const std::string where = "weights " + path_;
  for (const TensorSpec &spec : expected) {
    auto it = entries_.find(spec.name);
    if (it == entries_.end())
      throw std::runtime_error(where + ": missing tensor '" + spec.name +
                               "' (expected by " + context + ")");
    const Entry &e = it->second;
    DType want = spec.dtype;
    if (want != e.dtype)
      throw std::runtime_error(where + ": tensor '" + spec.name + "' is " +
                               stName(e.dtype) + " (" + dtypeName(e.dtype) +
                               ") but " + context + " expects " +
                               dtypeName(want));
    bool ok = spec.shape.size() == e.shape.size();
    for (size_t i = 0; ok && i < spec.shape.size(); ++i) {
      const DimSpec &d = spec.shape[i];
      if (d.size >= 0 && d.like.empty() && d.size != e.shape[i])
        ok = false;
    }
    if (!ok)
      throw std::runtime_error(where + ": tensor '" + spec.name +
                               "' has shape " + rt::shapeString(e.shape) + " but " +
                               context + " expects " +
                               spec.shapeString());
  }
}

} // namespace deltaflow::rt
