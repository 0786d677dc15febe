//===- NpyFuzzer.cpp - the .npy reader ------------------------------------===//
//
// Input: a whole .npy file. readNpy (magic, version, header length, the
// header dict through parseNpyHeader, dtype, shape, size checks, data) from
// memory; an accepted array must hold exactly the input's data bytes, and
// written back with writeNpy it must read back bit for bit. The header
// parser also sees the input as header text directly.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "deltaflow/Runtime/Npy.h"

#include <exception>
#include <sstream>

using namespace deltaflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz::ScratchFile out(".npy");
  const std::string bytes(reinterpret_cast<const char *>(data), size);
  try {
    rt::NpyHeader h = rt::parseNpyHeader(bytes, "fuzz");
    for (int64_t d : h.shape)
      FUZZ_CHECK(d >= 0);
  } catch (const std::exception &) {
  }

  rt::Tensor t;
  try {
    std::istringstream in(bytes);
    t = rt::readNpy(in, "fuzz.npy");
  } catch (const std::exception &) {
    return 0; // rejected, with a message
  }
  // Accepted: the data is in the input, after a header of at least 10 bytes.
  FUZZ_CHECK(t.numel() >= 0);
  FUZZ_CHECK(t.bytes() + 10 <= size);
  FUZZ_CHECK(std::memcmp(t.raw(), data + (size - t.bytes()), t.bytes()) == 0);
  // What the runtime writes, it reads back unchanged.
  rt::writeNpy(out.path(), t, t.dtype());
  rt::Tensor back = rt::readNpy(out.path());
  FUZZ_CHECK(back.dtype() == t.dtype());
  FUZZ_CHECK(back.shape() == t.shape());
  FUZZ_CHECK(std::memcmp(back.raw(), t.raw(), t.bytes()) == 0);
  return 0;
}
