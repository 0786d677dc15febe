//===- ReplayMain.cpp - run a fuzz target over files, without libFuzzer ---===//
//
// Builds each fuzz target as a plain program (every build but the libFuzzer
// one): `fuzz-npy FILE|DIR...` feeds each file (a directory's files, sorted)
// to LLVMFuzzerTestOneInput once. CTest runs it over the target's seed and
// regression corpus, so every crash the fuzzer ever found stays a test, and
// under scripts/sanitize.sh it runs with ASan and UBSan.
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

int main(int argc, char **argv) {
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p = argv[i];
    if (fs::is_directory(p)) {
      std::vector<fs::path> in;
      for (const auto &e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file())
          in.push_back(e.path());
      std::sort(in.begin(), in.end());
      files.insert(files.end(), in.begin(), in.end());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: error: no such file or directory '%s'\n",
                   argv[0], argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "%s: error: no inputs (usage: %s FILE|DIR...)\n",
                 argv[0], argv[0]);
    return 2;
  }
  for (const fs::path &f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    // A copy of exactly the file's bytes, as libFuzzer passes them (no NUL
    // after the end), so that ASan sees a read past the end.
    uint8_t *copy = new uint8_t[bytes.size() ? bytes.size() : 1];
    std::copy(bytes.begin(), bytes.end(), copy);
    LLVMFuzzerTestOneInput(copy, bytes.size());
    delete[] copy;
  }
  std::printf("%s: %zu input(s) ran\n", argv[0], files.size());
  return 0;
}
