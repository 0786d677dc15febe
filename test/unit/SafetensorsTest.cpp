//===- SafetensorsTest.cpp - memory-mapped .safetensors weights -----------===//

#include "Reference.h"

#include "deltaflow/Runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace deltaflow;
namespace fs = std::filesystem;

namespace {

struct Item {
  std::string name, dtype; // safetensors dtype: F32, F16, I32, ...
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string bytesOf(const rt::Tensor &t) {
  return std::string(static_cast<const char *>(t.raw()), t.bytes());
}

std::string shapeJson(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

class Safetensors : public ::testing::Test {
protected:
  fs::path dir = fs::temp_directory_path() /
                 ("deltaflow-safetensors-" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  std::string path(const char *name) { return (dir / name).string(); }

  std::string file(const char *name, const std::string &content) {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  }

  /// Writes the 8-byte length, `header` verbatim and `data`.
  std::string raw(const char *name, const std::string &header,
                  const std::string &data = "") {
    uint64_t n = header.size();
    return rawLength(name, n, header + data);
  }
  /// Writes the 8-byte length `n` and then `rest`.
  std::string rawLength(const char *name, uint64_t n, const std::string &rest) {
    std::ofstream out(path(name), std::ios::binary);
    for (int i = 0; i < 8; ++i)
      out.put(char((n >> (8 * i)) & 0xff));
    out << rest;
    return path(name);
  }

  /// A well-formed file: tensors in order and back to back (the format has
  /// no padding between tensors), the header padded with spaces to
  /// `headerPad` bytes (1: no padding).
  std::string write(const char *name, const std::vector<Item> &items,
                    size_t headerPad = 8, size_t align = 1,
                    const std::string &metadata = "") {
    std::ostringstream h;
    std::string data;
    h << "{";
    if (!metadata.empty())
      h << "\"__metadata__\":" << metadata << ",";
    for (size_t i = 0; i < items.size(); ++i) {
      while (data.size() % align)
        data += '\0';
      size_t begin = data.size();
      data += items[i].bytes;
      h << (i ? "," : "") << "\"" << items[i].name << "\":{\"dtype\":\""
        << items[i].dtype << "\",\"shape\":" << shapeJson(items[i].shape)
        << ",\"data_offsets\":[" << begin << "," << data.size() << "]}";
    }
    h << "}";
    std::string header = h.str();
    while (header.size() % headerPad)
      header += ' ';
    return raw(name, header, data);
  }

  std::string errorOpening(const std::string &p) {
    try {
      rt::SafetensorsFile::open(p);
    } catch (const std::exception &e) {
      return e.what();
    }
    return "";
  }

  /// Whether `p` is mapped into this process.
  static bool mapped(const std::string &p) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
      if (line.find(p) != std::string::npos)
        return true;
    return false;
  }
};

TEST_F(Safetensors, RoundTripViewsTheMapping) {
  rt::Tensor a = test::randomTensor({2, 3}, 1);
  rt::Tensor h = test::randomTensor({5}, 2).toFloat16();
  rt::Tensor i(std::vector<int64_t>{4}, rt::DType::Int32);
  for (int k = 0; k < 4; ++k)
    i.i32()[k] = k * 1000 - 7;
  rt::Tensor s(std::vector<int64_t>{});
  s.f32()[0] = 2.5f;
  // Back to back (the format has no padding between tensors), ordered so
  // that every tensor stays aligned to its element size.
  std::string p = write("ok.safetensors",
                        {{"layers.0.wq", "F32", {2, 3}, bytesOf(a)},
                         {"ids", "I32", {4}, bytesOf(i)},
                         {"scalar", "F32", {}, bytesOf(s)},
                         {"half", "F16", {5}, bytesOf(h)},
                         {"empty", "F32", {0, 3}, ""}},
                        8, 1, R"({"format":"pt"})");
  auto f = rt::SafetensorsFile::open(p);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"empty", "half", "ids",
                                                  "layers.0.wq", "scalar"}));
  EXPECT_TRUE(f->has("ids"));
  EXPECT_FALSE(f->has("__metadata__"));
  EXPECT_FALSE(f->has("nope"));

  struct Want {
    const char *name;
    const rt::Tensor *t;
    rt::DType dtype;
  } wants[] = {{"layers.0.wq", &a, rt::DType::Float32},
               {"half", &h, rt::DType::Float16},
               {"ids", &i, rt::DType::Int32},
               {"scalar", &s, rt::DType::Float32}};
  for (const Want &w : wants) {
    SCOPED_TRACE(w.name);
    ASSERT_TRUE(f->isZeroCopy(w.name));
    rt::Tensor r = f->tensor(w.name);
    EXPECT_EQ(r.shape(), w.t->shape());
    EXPECT_EQ(r.dtype(), w.dtype);
    ASSERT_EQ(r.bytes(), w.t->bytes());
    EXPECT_EQ(0, std::memcmp(r.raw(), w.t->raw(), r.bytes()));
    auto *q = static_cast<const uint8_t *>(r.raw());
    EXPECT_GE(q, f->data());
    EXPECT_LE(q + r.bytes(), f->data() + f->size());
    EXPECT_EQ(q, f->data() + f->entry(w.name).offset);
    EXPECT_NE(r.halideBuffer(), nullptr);
  }
  rt::Tensor e = f->tensor("empty");
  EXPECT_EQ(e.shape(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(e.numel(), 0);
  EXPECT_FLOAT_EQ(f->tensor("scalar").f32()[0], 2.5f);
  EXPECT_EQ(f->tensor("ids").i32()[3], 2993);
}

TEST_F(Safetensors, MisalignedDataIsCopied) {
  rt::Tensor a = test::randomTensor({3, 5}, 3);
  // An unpadded header of odd length: the data section starts misaligned.
  std::string p = write("odd.safetensors", {{"w", "F32", {3, 5}, bytesOf(a)}},
                        /*headerPad=*/1, /*align=*/1);
  auto f = rt::SafetensorsFile::open(p);
  ASSERT_NE(0u, f->entry("w").offset % 4)
      << "the fixture should be misaligned";
  EXPECT_FALSE(f->isZeroCopy("w"));
  rt::Tensor r = f->tensor("w");
  auto *q = static_cast<const uint8_t *>(r.raw());
  EXPECT_TRUE(q < f->data() || q >= f->data() + f->size());
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(q) % 4);
  EXPECT_EQ(0, std::memcmp(r.raw(), a.raw(), a.bytes()));
}

TEST_F(Safetensors, ViewOutlivesTheFile) {
  rt::Tensor a = test::randomTensor({16, 8}, 4);
  std::string p =
      write("live.safetensors", {{"w", "F32", {16, 8}, bytesOf(a)}});
  rt::Tensor view, copy;
  {
    auto f = rt::SafetensorsFile::open(p);
    ASSERT_TRUE(f->isZeroCopy("w"));
    view = f->tensor("w");
    EXPECT_TRUE(mapped(p));
  } // the SafetensorsFile is gone; the view keeps the mapping
  EXPECT_TRUE(mapped(p));
  ASSERT_TRUE(view.defined());
  EXPECT_EQ(0, std::memcmp(view.raw(), a.raw(), a.bytes()));
  copy = view; // copies share the keep-alive
  view = rt::Tensor();
  EXPECT_TRUE(mapped(p));
  EXPECT_EQ(0, std::memcmp(copy.raw(), a.raw(), a.bytes()));
  copy = rt::Tensor();
  EXPECT_FALSE(mapped(p)) << "the last view should unmap the file";
}

TEST_F(Safetensors, ClosesTheDescriptor) {
  std::string p = write("fd.safetensors", {{"w", "F32", {1}, "abcd"}});
  auto f = rt::SafetensorsFile::open(p);
  for (const auto &e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    fs::path target = fs::read_symlink(e.path(), ec);
    EXPECT_NE(target.string(), p) << "fd " << e.path() << " left open";
  }
}

TEST_F(Safetensors, UnknownTensorNamed) {
  auto f = rt::SafetensorsFile::open(
      write("u.safetensors", {{"w", "F32", {1}, "abcd"}}));
  try {
    f->tensor("missing.weight");
    FAIL() << "no exception";
  } catch (const std::exception &e) {
    EXPECT_NE(std::string(e.what()).find("'missing.weight'"), std::string::npos)
        << e.what();
  }
}

TEST_F(Safetensors, BadFilesNameTheProblem) {
  std::string f4(4, '\0');
  struct Case {
    std::string path;
    std::vector<std::string> needles;
  } cases[] = {
      {path("nonexistent.safetensors"), {"cannot open"}},
      {dir.string(), {"not a regular file"}},
      {file("short", "abc"), {"3 bytes, shorter than the 8-byte header"}},
      {rawLength("beyond", 100, "{}"), {"header length 100", "beyond"}},
      {rawLength("absurd", uint64_t(1) << 62, "{}"), {"absurd header length"}},
      {raw("json", "{\"w\": {\"dtype\": "), {"bad JSON header", "parse error"}},
      {raw("array", "[1, 2]"), {"not an object"}},
      {raw("nodtype", R"({"w.nodtype":{"shape":[1],"data_offsets":[0,4]}})",
           f4),
       {"tensor 'w.nodtype'", "no 'dtype'"}},
      {raw("noshape", R"({"w.noshape":{"dtype":"F32","data_offsets":[0,4]}})",
           f4),
       {"tensor 'w.noshape'", "no 'shape'"}},
      {raw("nooffsets", R"({"w.nooff":{"dtype":"F32","shape":[1]}})", f4),
       {"tensor 'w.nooff'", "no 'data_offsets'"}},
      {raw("f64",
           R"({"w.f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})",
           f4),
       {"tensor 'w.f64'", "unsupported dtype 'F64'"}},
      {raw("negdim",
           R"({"w.neg":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
           f4),
       {"tensor 'w.neg'", "bad dimension -1"}},
      {raw("offsets1",
           R"({"w.off1":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", f4),
       {"tensor 'w.off1'", "not [begin, end]"}},
      {raw("offsetsneg",
           R"({"w.offneg":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
           f4),
       {"tensor 'w.offneg'", "not [begin, end]"}},
      {raw("backwards",
           R"({"w.back":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
           f4),
       {"tensor 'w.back'", "begin > end"}},
      {raw("truncated",
           R"({"w.trunc":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
           f4),
       {"tensor 'w.trunc'", "truncated"}},
      {raw("size",
           R"({"w.size":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})",
           f4),
       {"tensor 'w.size'", "4 bytes of data", "expected 8"}},
      {raw("hugeshape",
           R"({"w.huge":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
           f4),
       {"tensor 'w.huge'", "4 bytes of data"}},
      // As the reference implementation: a name given twice, and bytes that
      // no tensor owns (between tensors, at the end), are refused.
      {raw("duplicate",
           R"({"w.d":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
           R"("w.d":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           std::string(8, '\0')),
       {"tensor 'w.d' is listed twice in the header"}},
      {raw("gap",
           R"({"w.a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
           R"("w.b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
           std::string(12, '\0')),
       {"bytes [4, 8) of the data section belong to no tensor (before 'w.b')"}},
      {raw("tail",
           R"({"w.a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
           std::string(9, '\0')),
       {"bytes [4, 9) at the end of the data section belong to no tensor"}},
      {raw("overlap",
           R"({"w.a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
           R"("w.b":{"dtype":"F16","shape":[2],"data_offsets":[2,6]}})",
           std::string(8, '\0')),
       {"'w.a'", "'w.b'", "overlap"}},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.path);
    std::string msg = errorOpening(c.path);
    ASSERT_FALSE(msg.empty()) << "no exception";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.path), std::string::npos) << msg;
    for (const std::string &n : c.needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' in: " << msg;
  }
}

TEST_F(Safetensors, TruncatedCopyOfAGoodFile) {
  rt::Tensor a = test::randomTensor({64}, 5);
  std::string p =
      write("t.safetensors", {{"x", "F32", {4}, std::string(16, 'x')},
                              {"w.last", "F32", {64}, bytesOf(a)}});
  ASSERT_EQ(errorOpening(p), "");
  fs::resize_file(p, fs::file_size(p) - 1);
  std::string msg = errorOpening(p);
  EXPECT_NE(msg.find("'w.last'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(Safetensors, Validate) {
  std::string p =
      write("v.safetensors", {{"w", "F32", {4, 8}, std::string(128, '\0')},
                              {"h", "F16", {3}, std::string(6, '\0')},
                              {"i", "I32", {2}, std::string(8, '\0')}});
  auto f = rt::SafetensorsFile::open(p);
  auto spec = [](std::string name, std::string dtype,
                 std::vector<int64_t> dims) {
    rt::TensorSpec t;
    t.name = std::move(name);
    t.dtype = *deltaflow::manifest::parseDType(dtype);
    for (int64_t d : dims) {
      rt::DimSpec ds;
      ds.size = d;
      t.shape.push_back(ds);
    }
    return t;
  };
  auto error = [&](std::vector<rt::TensorSpec> specs) -> std::string {
    try {
      f->validate(specs, "entry 'decode'");
    } catch (const std::exception &e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error({spec("w", "float32", {4, 8}), spec("h", "float16", {3}),
                   spec("i", "int32", {2})}),
            "");
  EXPECT_EQ(error({spec("w", "float32", {-1, 8})}), "") << "dynamic is free";
  EXPECT_EQ(error({}), "");

  EXPECT_EQ(error({spec("w", "float32", {4, 8}), spec("wk", "float32", {4})}),
            "weights " + p +
                ": missing tensor 'wk' (expected by entry 'decode')");

  std::string m = error({spec("w", "float32", {4, 9})});
  for (const char *n : {"'w'", "[4, 8]", "[4, 9]", "entry 'decode'"})
    EXPECT_NE(m.find(n), std::string::npos) << n << " in: " << m;
  m = error({spec("w", "float32", {-1, 9})});
  EXPECT_NE(m.find("[?, 9]"), std::string::npos) << m;
  m = error({spec("w", "float32", {32})});
  EXPECT_NE(m.find("[4, 8]"), std::string::npos) << m;
  EXPECT_NE(m.find("[32]"), std::string::npos) << m;

  m = error({spec("h", "float32", {3})});
  for (const char *n : {"'h'", "F16", "float16", "expects float32", p.c_str()})
    EXPECT_NE(m.find(n), std::string::npos) << n << " in: " << m;
  // An unknown dtype cannot reach validate(): TensorSpec's dtype is an
  // enum, and the manifest reader rejects other names (ManifestJson tests).
}

} // namespace

// The shape fuzz-npy found (test/fuzz/corpus/safetensors/
// regress-empty-huge-dim.safetensors): an empty tensor whose other
// dimensions multiply past int64. The reference implementation accepts it
// (its element count is 0); the view of it overflowed its Halide strides
// (undefined behaviour). It opens, reads as an empty tensor, and has no
// Halide buffer (its extents do not fit int32).
TEST_F(Safetensors, EmptyTensorWithAHugeDimension) {
  std::string p = write("e.safetensors",
                        {{"e", "F32", {2, 0, 618427361842738764, 12, 3}, ""},
                         {"x", "F32", {1}, std::string(4, '\0')}});
  auto f = rt::SafetensorsFile::open(p);
  rt::Tensor t = f->tensor("e");
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 0, 618427361842738764, 12, 3}));
  std::string err;
  try {
    t.halideBuffer();
  } catch (const std::exception &e) {
    err = e.what();
  }
  EXPECT_NE(err.find("does not fit a Halide buffer"), std::string::npos) << err;
}
