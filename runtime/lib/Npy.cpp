//===- Npy.cpp - NumPy .npy format (versions 1.0, 2.0, 3.0) ---------------===//

#include "deltaflow/Runtime/Npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <stdexcept>
#include <unistd.h>

namespace deltaflow::rt {

namespace {

/// NumPy's little-endian descr of each DType (float32, float16, int32).
const char *const kDescr[] = {"<f4", "<f2", "<i4"};

[[noreturn]] void fail(const std::string &path, const std::string &msg) {
  throw std::runtime_error(path + ": " + msg);
}
} // namespace

Tensor readNpy(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    fail(path, "not a .npy file (bad magic)");
  uint8_t major = uint8_t(magic[6]);
  uint32_t headerLen = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char *>(b), 2))
      fail(path, "truncated header");
    headerLen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char *>(b), 4))
      fail(path, "truncated header");
    headerLen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  } else {
    fail(path, "unsupported .npy version " + std::to_string(major));
  }
  if (headerLen > (1u << 20))
    fail(path, "header length " + std::to_string(headerLen) + " is implausible");
  std::string header(headerLen, '\0');
  if (!in.read(header.data(), headerLen))
    fail(path, "truncated header");

  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
    fail(path, "header has no 'descr'");
  std::string descr = m[1];
  DType dtype = DType::Float32;
  size_t known = 0;
  while (known < std::size(kDescr) && descr != kDescr[known])
    ++known;
  if (known < std::size(kDescr))
    dtype = DType(known);
  else
    fail(path, "dtype '" + descr +
                   "' is not supported (expected float32 '<f4', float16 '<f2' or int32 '<i4')");
  if (!std::regex_search(header, m,
                         std::regex("'fortran_order'\\s*:\\s*(True|False)")))
    fail(path, "header has no 'fortran_order'");
  if (m[1] == "True")
    fail(path, "Fortran-ordered arrays are not supported; save a C-ordered "
               "array (numpy.ascontiguousarray)");
  if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    fail(path, "header has no 'shape'");
  std::vector<int64_t> shape;
  std::string dims = m[1];
  std::regex num("\\s*(\\d+)\\s*(,|$)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num);
       it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll((*it)[1]));

  Tensor t(shape, dtype);
  in.read(static_cast<char *>(t.raw()), std::streamsize(t.bytes()));
  if (size_t(in.gcount()) != t.bytes())
    fail(path, "data is truncated: expected " + std::to_string(t.bytes()) +
                   " bytes for shape " + t.shapeString() + ", found " +
                   std::to_string(in.gcount()));
  in.peek();
  if (!in.eof())
    fail(path, "trailing bytes after the array data");
  return t;
}

void writeNpy(const std::string &path, const Tensor &src, DType as) {
  // Integer tensors (selected indices) are written as they are.
  if (src.dtype() == DType::Int32)
    as = DType::Int32;
  if (as == DType::BFloat16) // NumPy has no bfloat16; float32 is exact
    as = DType::Float32;
  Tensor t = as == DType::Int32     ? src
             : as == DType::Float32 ? src.toFloat32()
                                    : src.toFloat16();
  std::string shape = "(";
  for (int64_t d : t.shape())
    shape += std::to_string(d) + ", ";
  if (t.rank() > 1)
    shape.resize(shape.size() - 2);
  else if (t.rank() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = std::string("{'descr': '") +
                       kDescr[size_t(as)] +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';

  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      fail(path, std::string("cannot write: ") + std::strerror(errno));
    uint16_t len = uint16_t(header.size());
    out.write("\x93NUMPY\x01\x00", 8);
    char lb[2] = {char(len & 0xff), char(len >> 8)};
    out.write(lb, 2);
    out.write(header.data(), std::streamsize(header.size()));
    out.write(static_cast<const char *>(t.raw()), std::streamsize(t.bytes()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      fail(path, "write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, std::string("cannot write: ") + std::strerror(errno));
  }
}

} // namespace deltaflow::rt
