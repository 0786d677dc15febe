//===- NpyTest.cpp - .npy reading and writing -----------------------------===//

#include "Reference.h"

#include "deltaflow/Runtime/Npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace deltaflow;
namespace fs = std::filesystem;

namespace {

class Npy : public ::testing::Test {
protected:
  fs::path dir = fs::temp_directory_path() /
                 ("deltaflow-npy-" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  std::string path(const char *name) { return (dir / name).string(); }

  /// Writes a raw .npy with the given header dict and `bytes` of payload.
  std::string raw(const char *name, const std::string &dict, size_t bytes) {
    std::string header = dict;
    while ((10 + header.size() + 1) % 64)
      header += ' ';
    header += '\n';
    std::ofstream out(path(name), std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    char len[2] = {char(header.size() & 0xff), char(header.size() >> 8)};
    out.write(len, 2);
    out << header << std::string(bytes, '\x01');
    return path(name);
  }

  std::string errorReading(const std::string &p) {
    try {
      rt::readNpy(p);
    } catch (const std::exception &e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(Npy, Float32RoundTrip) {
  rt::Tensor t = test::randomTensor({2, 3, 5}, 7);
  rt::writeNpy(path("a.npy"), t);
  rt::Tensor r = rt::readNpy(path("a.npy"));
  ASSERT_EQ(r.shape(), t.shape());
  ASSERT_EQ(r.dtype(), rt::DType::Float32);
  EXPECT_EQ(0, std::memcmp(r.raw(), t.raw(), t.bytes()));
  EXPECT_FALSE(fs::exists(path("a.npy") + ".tmp." + std::to_string(getpid())));
}

TEST_F(Npy, Float16RoundTripAndConversion) {
  rt::Tensor t = test::randomTensor({7}, 3);
  t.f32()[0] = 1.0f / 3.0f;
  t.f32()[1] = 70000.0f; // overflows half
  t.f32()[2] = 1e-6f;    // half subnormal
  rt::writeNpy(path("h.npy"), t, rt::DType::Float16);
  rt::Tensor r = rt::readNpy(path("h.npy"));
  ASSERT_EQ(r.dtype(), rt::DType::Float16);
  rt::Tensor f = r.toFloat32();
  EXPECT_FLOAT_EQ(f.f32()[0], 0.333251953125f);
  EXPECT_TRUE(std::isinf(f.f32()[1]));
  EXPECT_NEAR(f.f32()[2], 1e-6f, 6e-8f);
  for (int i = 3; i < 7; ++i)
    EXPECT_NEAR(f.f32()[i], t.f32()[i], 2e-3 * std::abs(t.f32()[i]) + 1e-7);
}

TEST_F(Npy, ScalarAndOneDimShapes) {
  rt::Tensor s(std::vector<int64_t>{});
  s.f32()[0] = 2.5f;
  rt::writeNpy(path("s.npy"), s);
  EXPECT_EQ(rt::readNpy(path("s.npy")).rank(), 0);
  rt::Tensor v = test::randomTensor({4}, 1);
  rt::writeNpy(path("v.npy"), v);
  EXPECT_EQ(rt::readNpy(path("v.npy")).shape(), std::vector<int64_t>{4});
}

TEST_F(Npy, RejectsMissingFile) {
  EXPECT_NE(errorReading(path("nope.npy")).find("nope.npy: cannot open"),
            std::string::npos);
}

TEST_F(Npy, RejectsBadMagic) {
  std::ofstream(path("bad.npy")) << "hello world, not numpy";
  EXPECT_NE(errorReading(path("bad.npy")).find("not a .npy file"), std::string::npos);
}

TEST_F(Npy, RejectsUnsupportedDtype) {
  std::string p = raw("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
  EXPECT_NE(errorReading(p).find("dtype '<f8' is not supported"), std::string::npos);
  p = raw("i8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16);
  EXPECT_NE(errorReading(p).find("dtype '<i8' is not supported"), std::string::npos);
  p = raw("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
  EXPECT_NE(errorReading(p).find("dtype '>f4' is not supported"), std::string::npos);
}

TEST_F(Npy, RejectsFortranOrder) {
  std::string p = raw("f.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
  EXPECT_NE(errorReading(p).find("Fortran-ordered"), std::string::npos);
}

TEST_F(Npy, RejectsTruncatedAndTrailingData) {
  std::string p = raw("t.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20);
  EXPECT_NE(errorReading(p).find("data is truncated: expected 24 bytes for shape "
                                 "[2, 3], found 20"),
            std::string::npos);
  p = raw("x.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12);
  EXPECT_NE(errorReading(p).find("trailing bytes"), std::string::npos);
}

TEST_F(Npy, WriteToMissingDirectoryLeavesNothing) {
  rt::Tensor t = test::randomTensor({3}, 1);
  std::string p = (dir / "no-such-dir" / "o.npy").string();
  EXPECT_THROW(rt::writeNpy(p, t), std::runtime_error);
  EXPECT_FALSE(fs::exists(p));
}

} // namespace

TEST_F(Npy, HeaderIsParsedExactly) {
  auto err = [&](const char *name, const std::string &dict, size_t bytes) {
    return errorReading(raw(name, dict, bytes));
  };
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, ";
  // A shape entry that is not an integer (it used to read as 6).
  EXPECT_NE(err("x.npy", f4 + "'shape': (1, 4, x6, 64), }", 4 * 1536)
                .find("x.npy: malformed header: a shape entry that is not a "
                      "non-negative integer at byte"),
            std::string::npos);
  // Beyond int64 (it used to fail with the bare word "stoll").
  EXPECT_NE(err("big.npy", f4 + "'shape': (99999999999999999999,), }", 4)
                .find("big.npy: malformed header: dimension beyond int64"),
            std::string::npos);
  // 2^62 elements: refused before allocating, naming the file.
  EXPECT_NE(err("huge.npy", f4 + "'shape': (4611686018427387904,), }", 4)
                .find("huge.npy: shape [4611686018427387904] is too large"),
            std::string::npos);
  EXPECT_NE(err("huge2.npy", f4 + "'shape': (1073741824, 1073741824), }", 4)
                .find("huge2.npy: data is truncated: expected 4611686018427387904 bytes"),
            std::string::npos);
  EXPECT_NE(err("neg.npy", f4 + "'shape': (-2,), }", 8).find("not a non-negative integer"),
            std::string::npos);
  EXPECT_NE(err("dup.npy", f4 + "'shape': (2,), 'shape': (2,), }", 8)
                .find("duplicate key 'shape'"),
            std::string::npos);
  EXPECT_NE(err("key.npy", f4 + "'shape': (2,), 'extra': 1, }", 8)
                .find("unknown key 'extra'"),
            std::string::npos);
  EXPECT_NE(err("miss.npy", "{'descr': '<f4', 'shape': (2,), }", 8)
                .find("missing key 'fortran_order'"),
            std::string::npos);
  EXPECT_NE(err("one.npy", f4 + "'shape': (2), }", 8)
                .find("a one-element shape needs a trailing comma"),
            std::string::npos);
  EXPECT_NE(err("order.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8)
                .find("'fortran_order' is not True or False"),
            std::string::npos);
  EXPECT_NE(err("tail.npy", f4 + "'shape': (2,), } junk", 8).find("text after the dict"),
            std::string::npos);
  // What NumPy writes is accepted: keys in any order, spaces, no trailing
  // comma, double quotes, a scalar "()".
  EXPECT_EQ(err("ok1.npy", "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 24), "");
  EXPECT_EQ(err("ok2.npy", "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": ()}", 4), "");
  EXPECT_EQ(err("ok3.npy", f4 + "'shape': (0, 5), }", 0), "");
}


// Found by fuzz-npy (test/fuzz/corpus/npy/regress-empty-huge-dim.npy): an
// empty array (a zero dimension) whose other dimensions multiply past int64
// was accepted, and building its Halide buffer overflowed the strides
// (undefined behaviour). NumPy cannot make it (np.empty and np.load say
// "array is too big": the dimensions but the zeros, times the item size,
// must fit int64), so it is refused as too large; an empty array within
// that bound still reads.
TEST_F(Npy, EmptyArraysAreBoundedAsInNumPy) {
  const char *head = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
  std::string err = errorReading(
      raw("e.npy", std::string(head) + "(2, 0, 618427361842738764, 12, 3), }", 0));
  EXPECT_NE(err.find("e.npy: shape [2, 0, 618427361842738764, 12, 3] is too large"),
            std::string::npos)
      << err;
  // 2^61 float32 bytes is 2^63: beyond int64 by one.
  err = errorReading(raw("f.npy", std::string(head) + "(0, 2305843009213693952), }", 0));
  EXPECT_NE(err.find("is too large"), std::string::npos) << err;
  rt::Tensor t = rt::readNpy(
      raw("g.npy", std::string(head) + "(0, 2305843009213693951), }", 0));
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{0, 2305843009213693951}));
}

// The same shape built directly: an empty tensor whose extents do not fit
// Halide's int32 dimensions has no Halide buffer, and says so.
TEST_F(Npy, EmptyTensorBeyondHalideExtents) {
  rt::Tensor t({2, 0, 618427361842738764, 12, 3});
  EXPECT_EQ(t.numel(), 0);
  std::string err;
  try {
    t.halideBuffer();
  } catch (const std::exception &e) {
    err = e.what();
  }
  EXPECT_NE(err.find("does not fit a Halide buffer"), std::string::npos) << err;
  rt::writeNpy(path("back.npy"), t);
  EXPECT_NE(errorReading(path("back.npy")).find("is too large"), std::string::npos);
}
