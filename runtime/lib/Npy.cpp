//===- Npy.cpp - NumPy .npy format (versions 1.0, 2.0, 3.0) ---------------===//

#include "deltaflow/Runtime/Npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace deltaflow::rt {

namespace {

/// NumPy's little-endian descr of each DType (float32, float16, int32).
const char *const kDescr[] = {"<f4", "<f2", "<i4"};

[[noreturn]] void fail(const std::string &path, const std::string &msg) {
  throw std::runtime_error(path + ": " + msg);
}
} // namespace

NpyHeader parseNpyHeader(const std::string &text, const std::string &path) {
  // The header is a Python dict literal, as numpy.lib.format writes it:
  //   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
  // padded with spaces and ended by a newline. Exactly these three keys,
  // each once; a shape is a tuple of non-negative integers.
  size_t pos = 0;
  auto bad = [&](const std::string &what) -> NpyHeader {
    fail(path, "malformed header: " + what + " at byte " + std::to_string(pos) +
                   " of \"" + text.substr(0, text.find('\n')) + "\"");
  };
  auto skipSpace = [&] {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t'))
      ++pos;
  };
  auto expect = [&](char c) {
    skipSpace();
    if (pos >= text.size() || text[pos] != c)
      bad(std::string("expected '") + c + "'");
    ++pos;
  };
  auto peek = [&](char c) {
    skipSpace();
    return pos < text.size() && text[pos] == c;
  };
  auto string = [&]() {
    skipSpace();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      bad("expected a quoted string");
    char q = text[pos++];
    size_t end = text.find(q, pos);
    if (end == std::string::npos)
      bad("unterminated string");
    std::string v = text.substr(pos, end - pos);
    pos = end + 1;
    return v;
  };
  NpyHeader h;
  bool seenDescr = false, seenOrder = false, seenShape = false;
  expect('{');
  while (!peek('}')) {
    std::string key = string();
    expect(':');
    skipSpace();
    if (key == "descr") {
      if (seenDescr)
        bad("duplicate key 'descr'");
      seenDescr = true;
      h.descr = string();
    } else if (key == "fortran_order") {
      if (seenOrder)
        bad("duplicate key 'fortran_order'");
      seenOrder = true;
      if (text.compare(pos, 4, "True") == 0) {
        h.fortranOrder = true;
        pos += 4;
      } else if (text.compare(pos, 5, "False") == 0) {
        pos += 5;
      } else {
        bad("'fortran_order' is not True or False");
      }
    } else if (key == "shape") {
      if (seenShape)
        bad("duplicate key 'shape'");
      seenShape = true;
      expect('(');
      while (!peek(')')) {
        skipSpace();
        size_t start = pos;
        uint64_t v = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          unsigned digit = unsigned(text[pos] - '0');
          if (v > (uint64_t(std::numeric_limits<int64_t>::max()) - digit) / 10)
            bad("dimension beyond int64");
          v = v * 10 + digit;
          ++pos;
        }
        if (pos == start)
          bad("a shape entry that is not a non-negative integer");
        h.shape.push_back(int64_t(v));
        if (!peek(')')) {
          expect(',');
        } else if (h.shape.size() == 1 && text[pos - 1] != ',') {
          // "(5)" is an int in parentheses, not a tuple; NumPy writes "(5,)".
          bad("a one-element shape needs a trailing comma");
        }
      }
      expect(')');
    } else {
      bad("unknown key '" + key + "'");
    }
    if (!peek('}'))
      expect(',');
  }
  expect('}');
  skipSpace();
  if (pos < text.size() && text[pos] == '\n')
    ++pos;
  if (pos != text.size())
    bad("text after the dict");
  if (!seenDescr || !seenOrder || !seenShape)
    bad(std::string("missing key '") +
        (!seenDescr ? "descr" : !seenOrder ? "fortran_order" : "shape") + "'");
  return h;
}

Tensor readNpy(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  return readNpy(in, path);
}

Tensor readNpy(std::istream &in, const std::string &path) {
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

  NpyHeader h = parseNpyHeader(header, path);
  std::string descr = h.descr;
  DType dtype = DType::Float32;
  size_t known = 0;
  while (known < std::size(kDescr) && descr != kDescr[known])
    ++known;
  if (known < std::size(kDescr))
    dtype = DType(known);
  else
    fail(path, "dtype '" + descr +
                   "' is not supported (expected float32 '<f4', float16 '<f2' or int32 '<i4')");
  if (h.fortranOrder)
    fail(path, "Fortran-ordered arrays are not supported; save a C-ordered "
               "array (numpy.ascontiguousarray)");
  std::vector<int64_t> shape = h.shape;
  // As NumPy ("array is too big"): the item size times every dimension
  // but the zeros fits int64, even for an empty array. Then the data must
  // be in the file before anything is allocated for it.
  uint64_t sized = dtypeSize(dtype);
  bool empty = false;
  for (int64_t d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (sized > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d))
      fail(path, "shape " + shapeString(shape) + " is too large");
    sized *= uint64_t(d);
  }
  uint64_t bytes = empty ? 0 : sized;
  std::streampos dataStart = in.tellg();
  in.seekg(0, std::ios::end);
  uint64_t available = uint64_t(in.tellg() - dataStart);
  in.seekg(dataStart);
  if (bytes > available)
    fail(path, "data is truncated: expected " + std::to_string(bytes) +
                   " bytes for shape " + shapeString(shape) + ", found " +
                   std::to_string(available));
  if (bytes < available)
    fail(path, "trailing bytes after the array data");

  Tensor t(shape, dtype);
  in.read(static_cast<char *>(t.raw()), std::streamsize(t.bytes()));
  if (size_t(in.gcount()) != t.bytes())
    fail(path, std::string("read failed: ") + std::strerror(errno));
  return t;
}

namespace {
/// Writes `src` (as `as`) to a temporary file beside `path`; returns its
/// name. Removes it and throws on failure.
std::string writeTemporary(const std::string &path, const Tensor &src, DType as) {
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
  return tmp;
}

void commit(const std::string &tmp, const std::string &path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    fail(path, std::string("cannot write: ") + std::strerror(err));
  }
}
} // namespace

void writeNpy(const std::string &path, const Tensor &src, DType as) {
  commit(writeTemporary(path, src, as), path);
}

void writeNpyAll(const std::vector<std::pair<std::string, const Tensor *>> &files,
                 DType as) {
  std::vector<std::string> temporaries;
  try {
    // A directory where a file should go would make its rename fail after
    // earlier files were renamed: refuse it first.
    for (const auto &[path, t] : files) {
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        fail(path, "cannot write: Is a directory");
    }
    for (const auto &[path, t] : files)
      temporaries.push_back(writeTemporary(path, *t, as));
  } catch (...) {
    for (const std::string &tmp : temporaries)
      std::remove(tmp.c_str());
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      commit(temporaries[i], files[i].first);
    } catch (...) {
      for (size_t k = i + 1; k < files.size(); ++k)
        std::remove(temporaries[k].c_str());
      throw;
    }
  }
}

} // namespace deltaflow::rt
