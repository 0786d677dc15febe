//===- SafetensorsFuzzer.cpp - the safetensors reader ---------------------===//
//
// Input: a whole .safetensors file (written to a scratch file: the reader
// maps a path). SafetensorsFile::open checks the header length, the JSON
// header, each entry's dtype, shape and data_offsets, overlaps and unowned
// bytes. An accepted file's entries must lie inside the file and tile the
// data section; every tensor is read in full (views and misaligned copies),
// and validate() is run against the file's own entries (must pass) and
// against a fixed expectation like a model's (may throw).
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "deltaflow/Runtime/Safetensors.h"

#include <algorithm>
#include <exception>

using namespace deltaflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz::ScratchFile file(".safetensors");
  const std::string &path = file.write(data, size);
  std::shared_ptr<rt::SafetensorsFile> f;
  try {
    f = rt::SafetensorsFile::open(path);
  } catch (const std::exception &) {
    return 0;
  }
  FUZZ_CHECK(f->size() == size);
  FUZZ_CHECK(size >= 8);
  uint64_t headerLen = 0;
  std::memcpy(&headerLen, data, 8); // little-endian hosts only (x86, arm64)
  const uint64_t dataStart = 8 + headerLen;
  FUZZ_CHECK(dataStart <= size);

  std::vector<std::pair<uint64_t, uint64_t>> spans;
  std::vector<rt::TensorSpec> own;
  for (const std::string &name : f->names()) {
    FUZZ_CHECK(name != "__metadata__");
    FUZZ_CHECK(f->has(name));
    const rt::SafetensorsFile::Entry &e = f->entry(name);
    FUZZ_CHECK(e.offset >= dataStart && e.offset <= size);
    FUZZ_CHECK(e.bytes <= size - e.offset);
    if (e.bytes)
      spans.emplace_back(e.offset, e.offset + e.bytes);
    rt::Tensor t = f->tensor(name);
    FUZZ_CHECK(t.dtype() == e.dtype);
    FUZZ_CHECK(t.shape() == e.shape);
    FUZZ_CHECK(t.bytes() == e.bytes);
    FUZZ_CHECK(std::memcmp(t.raw(), data + e.offset, e.bytes) == 0);
    FUZZ_CHECK(f->isZeroCopy(name) == (t.raw() == f->data() + e.offset));
    rt::TensorSpec spec;
    spec.name = name;
    spec.dtype = e.dtype;
    for (int64_t d : e.shape)
      spec.shape.push_back(manifest::Dim::fixed(d));
    own.push_back(spec);
  }
  // The tensors cover the data section exactly (the reference's rule).
  std::sort(spans.begin(), spans.end());
  uint64_t covered = dataStart;
  for (const auto &[b, e] : spans) {
    FUZZ_CHECK(b == covered);
    covered = e;
  }
  FUZZ_CHECK(covered == size);

  f->validate(own, "the fuzz input itself"); // must not throw
  rt::TensorSpec w;
  w.name = "layers.0.wq";
  w.shape = {manifest::Dim::fixed(64), manifest::Dim(), manifest::Dim::fixed(4)};
  try {
    f->validate({w}, "a fuzz expectation");
  } catch (const std::exception &) {
  }
  try {
    f->entry("no such tensor");
    FUZZ_CHECK(!"entry() of an unknown name returned");
  } catch (const std::exception &) {
  }
  return 0;
}
