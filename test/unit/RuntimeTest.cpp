//===- RuntimeTest.cpp - module loading, executor, threads, errors --------===//

#include "ErrorOf.h"
#include "Reference.h"

#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Npy.h"

#include <HalideRuntime.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <unistd.h>

using namespace deltaflow;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<rt::Module> variants() {
  static auto m = rt::Module::load(DELTAFLOW_FIXTURE_DIR "/attention_variants.so");
  return m;
}
std::shared_ptr<rt::Module> example() {
  static auto m = rt::Module::load(DELTAFLOW_FIXTURE_DIR "/attention.so");
  return m;
}

std::map<std::string, rt::Tensor> gqaInputs(int64_t nq, int64_t nk, uint64_t seed) {
  return {{"q", test::randomTensor({1, 8, nq, 128}, seed)},
          {"k", test::randomTensor({1, 2, nk, 128}, seed + 1)},
          {"v", test::randomTensor({1, 2, nk, 128}, seed + 2)}};
}

bool bitwiseEqual(const rt::Tensor &a, const rt::Tensor &b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

TEST(Runtime, ListsEntriesFromManifest) {
  auto m = variants();
  ASSERT_EQ(m->entries().size(), 5u);
  EXPECT_EQ(m->entry("gqa4_d64_f16kv_lse").inputs[1].dtype, rt::DType::Float16);
  const rt::EntryInfo &e = m->entry("gqa8_d64_offset_lse");
  ASSERT_EQ(e.outputs.size(), 2u);
  EXPECT_EQ(e.outputs[1].name, "lse");
  EXPECT_EQ(e.inputs[0].shape[2].size, -1);
  EXPECT_NE(errorOf([&] { m->entry("nope"); }).find("has no entry 'nope'"),
            std::string::npos);
}

TEST(Runtime, ThreadCountsGiveIdenticalResults) {
  auto in = gqaInputs(37, 700, 11);
  rt::Executor one(variants(), 1), two(variants(), 2), three(variants(), 3);
  EXPECT_EQ(one.concurrency(), 1);
  EXPECT_EQ(two.concurrency(), 2);
  auto a = one.run("gqa4_d128_causal", in).at("out");
  auto b = two.run("gqa4_d128_causal", in).at("out");
  auto c = three.run("gqa4_d128_causal", in).at("out");
  EXPECT_TRUE(bitwiseEqual(a, b));
  EXPECT_TRUE(bitwiseEqual(a, c));
}

TEST(Runtime, OutputsAreReusedOnlyWhenTheCallerLetGo) {
  // The executor keeps a run's outputs for the next run of the entry, but
  // takes them only when nothing else holds them: results the caller keeps
  // are never written over.
  rt::Executor exec(variants(), 2);
  auto inA = gqaInputs(37, 700, 21), inB = gqaInputs(37, 700, 22);
  rt::Tensor a = exec.run("gqa4_d128_causal", inA).at("out");
  rt::Tensor aCopy(a.shape(), a.dtype());
  std::memcpy(aCopy.raw(), a.raw(), a.bytes());
  rt::Tensor b = exec.run("gqa4_d128_causal", inB).at("out");
  EXPECT_NE(b.raw(), a.raw()); // `a` is still held: b got new memory
  EXPECT_TRUE(bitwiseEqual(a, aCopy));
  rt::Tensor bRef = rt::Executor(variants(), 1).run("gqa4_d128_causal", inB).at("out");
  EXPECT_TRUE(bitwiseEqual(b, bRef));
  // Let go of b: the next run of the same shape writes its memory, and
  // gives the same answer as a fresh executor.
  const void *bData = b.raw();
  b = rt::Tensor();
  rt::Tensor a2 = exec.run("gqa4_d128_causal", inA).at("out");
  EXPECT_EQ(a2.raw(), bData);
  EXPECT_TRUE(bitwiseEqual(a2, aCopy));
  // Another shape: new memory, right answer.
  a2 = rt::Tensor();
  auto inC = gqaInputs(5, 700, 23);
  rt::Tensor c = exec.run("gqa4_d128_causal", inC).at("out");
  EXPECT_EQ(c.shape()[2], 5);
  EXPECT_TRUE(bitwiseEqual(c, rt::Executor(variants(), 1).run("gqa4_d128_causal", inC).at("out")));
}

TEST(Runtime, TwoModulesLoadedAtOnceRunConcurrently) {
  // The example module (32/8 heads) and the fixture module, each with its own
  // Halide runtime, used from two threads at the same time.
  auto exampleIn = std::map<std::string, rt::Tensor>{
      {"q", test::randomTensor({1, 32, 9, 128}, 1)},
      {"k", test::randomTensor({1, 8, 40, 128}, 2)},
      {"v", test::randomTensor({1, 8, 40, 128}, 3)}};
  auto fixtureIn = gqaInputs(20, 50, 4);
  rt::Executor e1(example(), 1), e2(variants(), 1);
  auto serial1 = e1.run("attention", exampleIn).at("out");
  auto serial2 = e2.run("gqa4_d128_causal", fixtureIn).at("out");
  rt::Tensor par1, par2;
  std::thread t1([&] {
    for (int i = 0; i < 5; ++i)
      par1 = e1.run("attention", exampleIn).at("out");
  });
  std::thread t2([&] {
    for (int i = 0; i < 5; ++i)
      par2 = e2.run("gqa4_d128_causal", fixtureIn).at("out");
  });
  t1.join();
  t2.join();
  EXPECT_TRUE(bitwiseEqual(serial1, par1));
  EXPECT_TRUE(bitwiseEqual(serial2, par2));
  auto ref = test::referenceAttention(exampleIn["q"], exampleIn["k"],
                                      exampleIn["v"], 1 / std::sqrt(128.0), true);
  EXPECT_LE(test::relativeL2(par1, ref.out), 1e-4);
}

TEST(Runtime, Avx2TargetMatchesReference) {
  // The same graph compiled with --target=x86-64-avx2 (8-lane schedules).
  auto m = rt::Module::load(DELTAFLOW_FIXTURE_DIR "/attention_avx2.so");
  rt::Executor exec(m, 2);
  for (auto [nq, nk] : {std::pair<int64_t, int64_t>{1, 1500}, {3, 3}, {19, 41}, {70, 300}}) {
    std::map<std::string, rt::Tensor> in = {
        {"q", test::randomTensor({1, 32, nq, 128}, 5)},
        {"k", test::randomTensor({1, 8, nk, 128}, 6)},
        {"v", test::randomTensor({1, 8, nk, 128}, 7)}};
    auto out = exec.run("attention", in).at("out");
    auto ref = test::referenceAttention(in["q"], in["k"], in["v"],
                                        1 / std::sqrt(128.0), true);
    EXPECT_LE(test::relativeL2(out, ref.out), 1e-4) << "Nq=" << nq << " Nk=" << nk;
  }
}

TEST(Runtime, F16KvInputsAreNotNarrowed) {
  // An f16-K/V entry: float32 K is rejected, naming the input.
  std::map<std::string, rt::Tensor> in = {
      {"q", test::randomTensor({2, 8, 3, 64}, 1)},
      {"k", test::randomTensor({2, 2, 5, 64}, 2)},
      {"v", test::randomTensor({2, 2, 5, 64}, 3).toFloat16()}};
  rt::Executor exec(variants(), 1);
  EXPECT_NE(errorOf([&] { exec.run("gqa4_d64_f16kv_lse", in); })
                .find("input 'k': dtype float32, expected float16 (float32 "
                      "is not narrowed"),
            std::string::npos);
  in["k"] = in["k"].toFloat16();
  EXPECT_EQ(errorOf([&] { exec.run("gqa4_d64_f16kv_lse", in); }), "");
}

TEST(Runtime, DeviceSelectionOnCpuModules) {
  // The Executor ignores a device for CPU modules; selecting one directly
  // is an error, as is a negative index.
  EXPECT_EQ(errorOf([&] { rt::Executor(variants(), 1, 0); }), "");
  EXPECT_NE(errorOf([&] { rt::Executor(variants(), 1, -2); })
                .find("GPU device index must be >= 0, got -2"),
            std::string::npos);
  rt::Module &m = *variants();
  EXPECT_NE(errorOf([&] { m.selectDevice(0); }).find("this is a CPU module"),
            std::string::npos);
  EXPECT_EQ(m.device(), -1);
  EXPECT_EQ(m.gpuDeviceCount(), 0);
}

TEST(Runtime, RejectsBadInputsWithClearMessages) {
  rt::Executor exec(variants(), 2);
  auto in = gqaInputs(5, 9, 21);
  auto run = [&](std::map<std::string, rt::Tensor> inputs) {
    return errorOf([&] { exec.run("gqa4_d128_scaled", inputs); });
  };
  auto missing = in;
  missing.erase("v");
  EXPECT_NE(run(missing).find("missing input 'v'"), std::string::npos);

  auto extra = in;
  extra["w"] = in["v"];
  EXPECT_NE(run(extra).find("has no input 'w'"), std::string::npos);

  auto wrongHeads = in;
  wrongHeads["k"] = test::randomTensor({1, 4, 9, 128}, 1);
  EXPECT_NE(run(wrongHeads).find("input 'k': shape [1, 4, 9, 128] does not "
                                 "match [1, 2, ?, 128]"),
            std::string::npos);

  auto wrongRank = in;
  wrongRank["q"] = test::randomTensor({8, 5, 128}, 1);
  EXPECT_NE(run(wrongRank).find("does not match"), std::string::npos);

  auto half = in;
  half["q"] = in["q"].toFloat16();
  EXPECT_NE(run(half).find("dtype float16, expected float32"), std::string::npos);

  auto shortV = in;
  shortV["v"] = test::randomTensor({1, 2, 4, 128}, 1);
  EXPECT_NE(run(shortV).find("Input buffer v is accessed at 8, which is "
                             "beyond the max (3) in dimension 1"),
            std::string::npos)
      << run(shortV);

  auto empty = in;
  empty["k"] = rt::Tensor({1, 2, 0, 128});
  EXPECT_NE(run(empty).find("empty dimension"), std::string::npos);

  // Causal with the default offset needs Nk >= Nq.
  auto more = gqaInputs(10, 5, 3);
  EXPECT_NE(errorOf([&] { exec.run("gqa4_d128_causal", more); })
                .find("at least as many keys as queries; got Nq = 10 and Nk = 5"),
            std::string::npos);
}

class ManifestTest : public ::testing::Test {
protected:
  fs::path dir = fs::temp_directory_path() /
                 ("deltaflow-manifest-" + std::to_string(::getpid()));
  void SetUp() override {
    fs::create_directories(dir);
    fs::copy_file(DELTAFLOW_FIXTURE_DIR "/attention.so", dir / "m.so",
                  fs::copy_options::overwrite_existing);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string loadWith(const std::string &manifest) {
    std::ofstream(dir / "m.manifest.json") << manifest;
    return errorOf([&] { rt::Module::load((dir / "m.so").string()); });
  }
};

TEST_F(ManifestTest, MissingManifest) {
  EXPECT_NE(errorOf([&] { rt::Module::load((dir / "m.so").string()); })
                .find("cannot open the module manifest"),
            std::string::npos);
}

TEST_F(ManifestTest, CorruptJson) {
  EXPECT_NE(loadWith("{\"format\": ").find("malformed JSON"), std::string::npos);
}

TEST_F(ManifestTest, WrongFormat) {
  EXPECT_NE(loadWith(R"({"format": "other", "version": 1})")
                .find("not a deltaflow module manifest"),
            std::string::npos);
}

TEST_F(ManifestTest, MissingEntryField) {
  std::string err = loadWith(
      R"({"format": "deltaflow-module", "version": 1, "target": "host",
          "entries": [{"name": "attention", "inputs": []}]})");
  EXPECT_NE(err.find("entry 'attention': missing field 'outputs'"),
            std::string::npos)
      << err;
}

TEST_F(ManifestTest, MissingSymbol) {
  std::string err = loadWith(
      R"({"format": "deltaflow-module", "version": 1, "target": "host",
          "entries": [{"name": "e", "inputs": [], "outputs": [], "temporaries": [],
          "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [],
          "outputs": [], "params": {"ops": "add"},
          "variants": [{"symbol": "no_such_kernel"}]}]}]})");
  EXPECT_NE(err.find("symbol 'no_such_kernel_argv' not found"), std::string::npos)
      << err;
}

TEST_F(ManifestTest, DepsMustCoverWhatKernelsRead) {
  // The executor orders kernels by `deps` alone: a manifest whose deps omit
  // a read-after-write edge is refused at load, before any symbol lookup.
  std::string err = loadWith(
      R"({"format": "deltaflow-module", "version": 1, "target": "host",
          "entries": [{"name": "e", "inputs": [], "outputs": [], "temporaries": [],
          "kernels": [{"name": "a", "kind": "graph", "loc": "x", "inputs": [],
          "outputs": ["t"], "params": {"ops": "add"}, "variants": [{"symbol": "s"}]},
          {"name": "b", "kind": "graph", "loc": "x", "inputs": ["t"],
          "outputs": [], "params": {"ops": "add"}, "variants": [{"symbol": "s"}],
          "deps": []}]}]})");
  EXPECT_NE(err.find("kernel 'b': reads what kernel 0 writes, but deps omit it"),
            std::string::npos)
      << err;
}

TEST_F(ManifestTest, BadDerivedDimension) {
  std::string err = loadWith(
      R"({"format": "deltaflow-module", "version": 1, "target": "host",
          "entries": [{"name": "e", "inputs": [], "temporaries": [],
          "outputs": [{"name": "idx", "dtype": "int32",
                       "shape": [1, {"like": "q", "dim": 2, "div": 0, "add": 0}]}],
          "kernels": []}]})");
  EXPECT_NE(err.find("tensor 'idx': bad derived dimension"), std::string::npos) << err;
}

// A manifest whose static shapes overflow 64 bits (found reviewing what
// fuzz-manifest exercises): the element counts were signed overflows
// (undefined behaviour) before the allocation; now each is an error.
TEST_F(ManifestTest, ShapesBeyond64BitsAreRunErrors) {
  const std::string big = "4611686018427387904"; // 2^62
  auto runWith = [&](const std::string &outputs, const std::string &temps) {
    std::ofstream(dir / "m.manifest.json")
        << R"({"format": "deltaflow-module", "version": 1, "target": "host",
          "entries": [{"name": "e", "inputs": [{"name": "q", "dtype": "float32",
          "shape": [1, -1], "role": "input"}], "outputs": [)" + outputs +
               R"(], "temporaries": [)" + temps + R"(], "kernels": []}]})";
    auto m = rt::Module::load((dir / "m.so").string());
    rt::Executor exec(m, 1);
    return errorOf([&] { exec.run("e", {{"q", rt::Tensor({1, 3})}}); });
  };
  EXPECT_EQ(runWith(R"({"name": "out", "dtype": "float32", "shape": [)" + big +
                        ", " + big + "]}",
                    ""),
            "tensor shape [" + big + ", " + big + "] of float32 is too large");
  EXPECT_EQ(runWith("", R"({"name": "t", "dtype": "float16", "shape": [)" + big +
                            ", 2, 3]}"),
            "entry 'e' temporary 't': shape [" + big + ", 2, 3] is too large");
}

TEST(Runtime, TensorShapesBeyond64BitsAreRefused) {
  const int64_t big = int64_t(1) << 62;
  EXPECT_EQ(errorOf([&] { rt::Tensor({big, 4}); }),
            "tensor shape [4611686018427387904, 4] of float32 is too large");
  EXPECT_EQ(errorOf([&] { rt::Tensor({big, big, 0}, rt::DType::Float16); }),
            "tensor shape [4611686018427387904, 4611686018427387904, 0] of "
            "float16 is too large");
  float x = 0;
  EXPECT_EQ(errorOf([&] { rt::Tensor::view({big, 2}, rt::DType::Float32, &x, nullptr); }),
            "tensor shape [4611686018427387904, 2] of float32 is too large");
  EXPECT_EQ(rt::Tensor({0, big}).numel(), 0); // in range: empty
}

TEST_F(ManifestTest, ModuleOfAnotherArchitecture) {
  std::string err = loadWith(
      R"({"format": "deltaflow-module", "version": 1, "target": "arm64",
          "halide_target": "arm-64-linux", "entries": []})");
  EXPECT_NE(err.find("module compiled for arm64 (arm-64-linux); this runtime runs "
                     "x86-64 modules"),
            std::string::npos)
      << err;
}

TEST(Runtime, NotAModule) {
  fs::path p = fs::temp_directory_path() / "deltaflow-not-a-module.so";
  std::ofstream(p) << "garbage";
  std::ofstream(fs::path(p).replace_extension(".manifest.json"))
      << R"({"format": "deltaflow-module", "version": 1, "target": "host", "entries": []})";
  EXPECT_NE(errorOf([&] { rt::Module::load(p.string()); }).find("cannot load module"),
            std::string::npos);
}

} // namespace

// A CUDA session's KV cache lives on the device: the step's view of its
// first positions (Tensor::narrow) aliases the allocation through Halide's
// device_crop, takes its dirty flags, and releases the crop (never frees
// the parent's memory) when it goes. A stand-in device interface records
// the calls, so no driver is needed.
namespace fake_device {
int crops = 0, releases = 0, frees = 0;
const halide_device_interface_t *self();
int crop(void *, const halide_buffer_t *src, halide_buffer_t *dst) {
  ++crops;
  int64_t offset = 0;
  for (int d = 0; d < src->dimensions; ++d)
    offset += int64_t(dst->dim[d].min - src->dim[d].min) * src->dim[d].stride;
  dst->device = src->device + uint64_t(offset) * src->type.bytes();
  dst->device_interface = self();
  dst->flags = (dst->flags & ~uint64_t(halide_buffer_flag_device_dirty)) |
               (src->flags & halide_buffer_flag_device_dirty);
  return 0;
}
int release(void *, halide_buffer_t *b) {
  ++releases;
  b->device = 0;
  b->device_interface = nullptr;
  return 0;
}
int freeAllocation(void *, halide_buffer_t *b) {
  ++frees;
  b->device = 0;
  return 0;
}
int wraps = 0, detaches = 0;
int wrap(void *, halide_buffer_t *b, uint64_t handle, const halide_device_interface_t *i) {
  ++wraps;
  b->device = handle;
  b->device_interface = i;
  return 0;
}
int detach(void *, halide_buffer_t *b) {
  ++detaches;
  b->device = 0;
  b->device_interface = nullptr;
  return 0;
}
const halide_device_interface_t *self() {
  static halide_device_interface_t i = [] {
    halide_device_interface_t d;
    std::memset(&d, 0, sizeof d);
    d.device_crop = crop;
    d.device_release_crop = release;
    d.device_free = freeAllocation;
    d.wrap_native = wrap;
    d.detach_native = detach;
    return d;
  }();
  return &i;
}
} // namespace fake_device

// A GPU run's temporaries alias its device arena: wrapped at their offset,
// detached (never freed) with their last handle, and the arena lives on
// until then.
TEST(Runtime, AliasDeviceWrapsTheArenaAndDetaches) {
  fake_device::wraps = fake_device::detaches = fake_device::frees = 0;
  {
    rt::Tensor view;
    {
      auto arena = std::make_shared<rt::Tensor>(std::vector<int64_t>{1024});
      halide_buffer_t *a = arena->halideBuffer();
      a->device = 0x300000;
      a->device_interface = fake_device::self();
      rt::Tensor host = rt::Tensor::view({4, 16}, rt::DType::Float32,
                                         static_cast<uint8_t *>(arena->raw()) + 256, arena);
      view = host.aliasDevice(*arena, 256);
      EXPECT_EQ(fake_device::wraps, 1);
      EXPECT_EQ(view.halideBuffer()->device, uint64_t(0x300000 + 256));
      EXPECT_EQ(view.halideBuffer()->host, host.halideBuffer()->host);
      EXPECT_EQ(host.halideBuffer()->device, 0u); // the host view is untouched
    }
    EXPECT_EQ(fake_device::frees, 0); // the view keeps the arena
    EXPECT_EQ(fake_device::detaches, 0);
  }
  EXPECT_EQ(fake_device::detaches, 1);
  EXPECT_EQ(fake_device::frees, 1); // then the arena's own allocation
  // An owner without a device allocation: one line, no alias.
  rt::Tensor plain({8});
  try {
    rt::Tensor({2, 2}).aliasDevice(plain, 0);
    ADD_FAILURE() << "aliasDevice without a device allocation did not throw";
  } catch (const std::exception &e) {
    EXPECT_NE(std::string(e.what()).find("has no device allocation"), std::string::npos);
  }
}

TEST(Runtime, NarrowOfADeviceTensorIsACropReleasedNotFreed) {
  fake_device::crops = fake_device::releases = fake_device::frees = 0;
  {
    rt::Tensor cache({1, 2, 64, 8}, rt::DType::Float16);
    halide_buffer_t *full = cache.halideBuffer();
    full->device = 0x100000;
    full->device_interface = fake_device::self();
    full->flags = halide_buffer_flag_device_dirty;
    {
      rt::Tensor view = cache.narrow(2, 40);
      const halide_buffer_t *v = view.halideBuffer();
      EXPECT_EQ(fake_device::crops, 1);
      EXPECT_EQ(v->device, uint64_t(0x100000)); // positions from 0: no offset
      EXPECT_EQ(v->device_interface, fake_device::self());
      EXPECT_TRUE(v->flags & halide_buffer_flag_device_dirty);
      EXPECT_FALSE(view.hostCurrent());
      EXPECT_EQ(v->dim[1].extent, 40);
      EXPECT_EQ(v->dim[2].stride, 64 * 8); // the parent's strides
      rt::Tensor copy = view; // shares the buffer: one release
    }
    EXPECT_EQ(fake_device::releases, 1);
    EXPECT_EQ(fake_device::frees, 0);
    // A host tensor's view stays a host view.
    rt::Tensor host({1, 2, 64, 8}, rt::DType::Float32);
    EXPECT_EQ(host.narrow(2, 3).halideBuffer()->device, 0u);
    EXPECT_EQ(fake_device::crops, 1);
  }
  EXPECT_EQ(fake_device::frees, 1); // the parent's allocation, once
  EXPECT_EQ(fake_device::releases, 1);
  // A view that outlives every handle on its parent keeps the parent's
  // allocation: released first, then the parent freed.
  {
    rt::Tensor view;
    {
      rt::Tensor out({1, 4, 9, 16}, rt::DType::Float32);
      halide_buffer_t *b = out.halideBuffer();
      b->device = 0x200000;
      b->device_interface = fake_device::self();
      view = out.narrow(2, 5);
    }
    EXPECT_EQ(fake_device::frees, 1);
    EXPECT_EQ(view.halideBuffer()->device, uint64_t(0x200000));
  }
  EXPECT_EQ(fake_device::releases, 2);
  EXPECT_EQ(fake_device::frees, 2);
}
